//! The item trie: a prefix tree over the token sequences of the catalogue titles (docs/method.md §5 `[CODE]`: the
//! candidate continuations of constrained beam search).
//!
//! The caller passes `encode_target(title)` of every catalogue title, i.e. `encode('"' + title + '"\n') + [eos]`,
//! the same function that builds the SFT labels, so that a decoded path is exactly a label sequence. Identical
//! sequences (titles shared by several items) collapse into one path that remembers every item index.
//!
//! Layout: nodes are numbered breadth-first, so the children of a node have consecutive ids and are stored as
//! one slice of edge tokens, sorted ascending. [`Trie::allowed_at`] is a slice borrow and [`Trie::child`] a binary
//! search: a beam step does no hashing and no allocation.

use std::collections::BTreeMap;
use std::ops::Range;

use crate::error::{Error, Result};

/// The id of a trie node; [`Trie::ROOT`] is the empty prefix.
pub type NodeId = u32;

/// A prefix tree over token-id sequences with the item indices of the complete paths.
#[derive(Clone, Debug)]
pub struct Trie {
    /// `edge_token[c]`: the token on the edge into node `c` (unused for the root).
    edge_token: Vec<u32>,
    /// `parent[c]`: the parent of node `c` (the root is its own parent).
    parent: Vec<NodeId>,
    /// `first_child[n]`: the id of the first child of `n` (children are `first_child[n] .. + n_children[n]`).
    first_child: Vec<u32>,
    /// `n_children[n]`: how many children `n` has.
    n_children: Vec<u32>,
    /// `item_start[n] .. item_start[n + 1]`: the range of `items` that end at node `n`.
    item_start: Vec<u32>,
    /// The input indices of the sequences, grouped by their end node.
    items: Vec<u32>,
    /// The end node of every input sequence.
    end_node: Vec<NodeId>,
    /// The number of distinct sequences (nodes where at least one sequence ends).
    n_paths: usize,
    /// The largest token id of any sequence.
    max_token: u32,
}

impl Trie {
    /// The root: the empty prefix.
    pub const ROOT: NodeId = 0;

    /// Builds the trie of `sequences`. Sequence `i` is item `i` (pass the titles in catalogue order to get
    /// catalogue item ids back); duplicates collapse into one path that lists all their indices.
    ///
    /// # Errors
    /// [`Error::EmptyTrie`] without sequences, [`Error::EmptySequence`] for an empty sequence.
    pub fn new(sequences: &[Vec<u32>]) -> Result<Self> {
        if sequences.is_empty() {
            return Err(Error::EmptyTrie);
        }
        // Build with ordered maps (build time only), then renumber breadth-first into flat arrays.
        let mut maps: Vec<BTreeMap<u32, usize>> = vec![BTreeMap::new()];
        let mut ends: Vec<Vec<u32>> = vec![Vec::new()];
        let mut tmp_end = Vec::with_capacity(sequences.len());
        for (index, seq) in sequences.iter().enumerate() {
            if seq.is_empty() {
                return Err(Error::EmptySequence { index });
            }
            let mut node = 0;
            for &t in seq {
                let next = maps.len();
                node = *maps[node].entry(t).or_insert(next);
                if node == next {
                    maps.push(BTreeMap::new());
                    ends.push(Vec::new());
                }
            }
            ends[node].push(index as u32);
            tmp_end.push(node);
        }
        let n = maps.len();
        let mut new_id = vec![0u32; n];
        let mut order = Vec::with_capacity(n); // temporary ids in breadth-first order
        order.push(0usize);
        let mut edge_token = vec![0u32; n];
        let mut first_child = vec![0u32; n];
        let mut parent = vec![0u32; n];
        let mut n_children = vec![0u32; n];
        let mut head = 0;
        while head < order.len() {
            let old = order[head];
            let id = head;
            first_child[id] = order.len() as u32;
            n_children[id] = maps[old].len() as u32;
            for (&t, &child) in &maps[old] {
                new_id[child] = order.len() as u32;
                edge_token[order.len()] = t;
                parent[order.len()] = id as u32;
                order.push(child);
            }
            head += 1;
        }
        let mut item_start = Vec::with_capacity(n + 1);
        let mut items = Vec::with_capacity(sequences.len());
        let mut n_paths = 0;
        for &old in &order {
            item_start.push(items.len() as u32);
            items.extend_from_slice(&ends[old]);
            n_paths += usize::from(!ends[old].is_empty());
        }
        item_start.push(items.len() as u32);
        let max_token = sequences.iter().flatten().copied().max().unwrap_or(0);
        let end_node = tmp_end.into_iter().map(|old| new_id[old]).collect();
        Ok(Trie { edge_token, parent, first_child, n_children, item_start, items, end_node, n_paths, max_token })
    }

    /// The number of nodes (the root included).
    pub fn num_nodes(&self) -> usize {
        self.first_child.len()
    }

    /// The number of input sequences (items), duplicates included.
    pub fn num_items(&self) -> usize {
        self.end_node.len()
    }

    /// The number of distinct sequences.
    pub fn num_paths(&self) -> usize {
        self.n_paths
    }

    /// The largest token id of any sequence (it must be below the model's vocabulary size).
    pub fn max_token(&self) -> u32 {
        self.max_token
    }

    /// The children of `node` as a range of node ids (their edge tokens ascend).
    pub fn children(&self, node: NodeId) -> Range<NodeId> {
        let n = node as usize;
        self.first_child[n]..self.first_child[n] + self.n_children[n]
    }

    /// The tokens allowed after the prefix that ends at `node`, ascending; empty at a leaf.
    pub fn allowed_at(&self, node: NodeId) -> &[u32] {
        let r = self.children(node);
        &self.edge_token[r.start as usize..r.end as usize]
    }

    /// The tokens allowed after `prefix`, ascending; empty when `prefix` is not a prefix of any sequence or is a
    /// complete sequence that nothing extends.
    pub fn allowed(&self, prefix: &[u32]) -> &[u32] {
        self.walk(prefix).map_or(&[], |n| self.allowed_at(n))
    }

    /// The child of `node` along `token`, if any.
    pub fn child(&self, node: NodeId, token: u32) -> Option<NodeId> {
        let r = self.children(node);
        self.allowed_at(node).binary_search(&token).ok().map(|i| r.start + i as u32)
    }

    /// The node at the end of `prefix`, if `prefix` is a prefix of some sequence (the empty prefix is the root).
    pub fn walk(&self, prefix: &[u32]) -> Option<NodeId> {
        prefix.iter().try_fold(Self::ROOT, |n, &t| self.child(n, t))
    }

    /// The items (input indices, ascending) whose sequence ends exactly at `node`.
    pub fn items_at(&self, node: NodeId) -> &[u32] {
        let n = node as usize;
        &self.items[self.item_start[n] as usize..self.item_start[n + 1] as usize]
    }

    /// The first item (input index) whose sequence equals `path`, if `path` is a complete sequence.
    pub fn item(&self, path: &[u32]) -> Option<usize> {
        self.walk(path).and_then(|n| self.items_at(n).first()).map(|&i| i as usize)
    }

    /// The node where item `item`'s sequence ends.
    ///
    /// # Panics
    /// When `item >= self.num_items()`.
    pub fn end_node(&self, item: usize) -> NodeId {
        self.end_node[item]
    }

    /// The token sequence that ends at `node` (the path from the root).
    pub fn path(&self, node: NodeId) -> Vec<u32> {
        let mut out = Vec::new();
        let mut n = node;
        while n != Self::ROOT {
            out.push(self.edge_token[n as usize]);
            n = self.parent[n as usize];
        }
        out.reverse();
        out
    }

    /// The mass of every node: the sum of `weights` of the items that end in its subtree.
    ///
    /// # Panics
    /// When `weights.len() != self.num_items()`.
    pub fn subtree_mass(&self, weights: &[f32]) -> Vec<f64> {
        assert_eq!(weights.len(), self.num_items(), "one weight per trie item");
        let mut mass = vec![0f64; self.num_nodes()];
        for (item, &n) in self.end_node.iter().enumerate() {
            mass[n as usize] += f64::from(weights[item]);
        }
        // Children have larger ids than their parent: accumulate from the deepest node up.
        for n in (0..self.num_nodes()).rev() {
            let r = self.children(n as NodeId);
            let s: f64 = mass[r.start as usize..r.end as usize].iter().sum();
            mass[n] += s;
        }
        mass
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_trie() {
        let seqs = vec![vec![5, 6, 2], vec![5, 7, 8, 2], vec![9, 2], vec![5, 6, 2]];
        let t = Trie::new(&seqs).unwrap();
        assert_eq!(t.num_items(), 4);
        assert_eq!(t.num_paths(), 3);
        assert_eq!(t.allowed(&[]), &[5, 9]);
        assert_eq!(t.allowed(&[5]), &[6, 7]);
        assert_eq!(t.allowed(&[5, 7, 8]), &[2]);
        assert_eq!(t.allowed(&[5, 7, 8, 2]), &[] as &[u32]);
        assert_eq!(t.allowed(&[4]), &[] as &[u32]);
        assert_eq!(t.item(&[5, 6, 2]), Some(0));
        assert_eq!(t.items_at(t.walk(&[5, 6, 2]).unwrap()), &[0, 3]);
        assert_eq!(t.item(&[5, 6]), None);
        assert_eq!(t.item(&[9, 2]), Some(2));
        // root + 5, 9 + 6, 7, 2 + 2, 8 + 2
        assert_eq!(t.num_nodes(), 9);
        assert!(matches!(Trie::new(&[]), Err(Error::EmptyTrie)));
        assert!(matches!(Trie::new(&[vec![1], vec![]]), Err(Error::EmptySequence { index: 1 })));
    }

    #[test]
    fn mass_sums_items_below() {
        let seqs = vec![vec![5, 6, 2], vec![5, 7, 8, 2], vec![9, 2], vec![5, 6, 2]];
        let t = Trie::new(&seqs).unwrap();
        let m = t.subtree_mass(&[1.0, 2.0, 4.0, 8.0]);
        assert_eq!(m[0], 15.0);
        assert_eq!(m[t.walk(&[5]).unwrap() as usize], 11.0);
        assert_eq!(m[t.walk(&[5, 6]).unwrap() as usize], 9.0);
        assert_eq!(m[t.walk(&[9]).unwrap() as usize], 4.0);
    }

    proptest! {
        /// The flat trie answers like a naive scan of the sequences: allowed tokens of every prefix, items of
        /// every complete path, and the path of every end node.
        #[test]
        fn matches_a_naive_scan(seqs in prop::collection::vec(prop::collection::vec(0u32..6, 1..6), 1..12)) {
            let t = Trie::new(&seqs).unwrap();
            let mut distinct = seqs.clone();
            distinct.sort();
            distinct.dedup();
            prop_assert_eq!(t.num_paths(), distinct.len());
            for s in &seqs {
                for k in 0..=s.len() {
                    let prefix = &s[..k];
                    let mut want: Vec<u32> =
                        seqs.iter().filter(|q| q.len() > k && &q[..k] == prefix).map(|q| q[k]).collect();
                    want.sort();
                    want.dedup();
                    prop_assert_eq!(t.allowed(prefix), &want[..]);
                    let items: Vec<u32> =
                        (0..seqs.len()).filter(|&i| seqs[i] == prefix).map(|i| i as u32).collect();
                    let node = t.walk(prefix).unwrap();
                    prop_assert_eq!(t.items_at(node), &items[..]);
                    prop_assert_eq!(t.path(node), prefix.to_vec());
                }
            }
            for (i, s) in seqs.iter().enumerate() {
                prop_assert_eq!(t.path(t.end_node(i)), s.clone());
                prop_assert!(t.items_at(t.end_node(i)).contains(&(i as u32)));
            }
        }
    }
}
