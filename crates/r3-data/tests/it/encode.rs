//! Prompt, target and batch encoding (`r3_data::encode`) on a byte-level tokenizer without merges, where every id
//! is a byte of the text (ids 0..256), so expected ids can be written from the text. The real SmolLM2 ids against
//! the LatentR³ golden are checked in `r3-backbone`'s `encode_golden`.

use r3_data::encode::{CATEGORY_WORDS, EncodedSample, Encoder, EncoderConfig, SftBatch, Template, category_word};
use r3_data::tokenizer::token_type;
use r3_data::{BpeVocab, Dataset, Error, Interaction, PreTokenizerKind, Split, Tokenizer};

use crate::common::{CDS, INDUSTRIAL, byte_symbols, data_root};

const BOS: u32 = 256;
const EOS: u32 = 257;
const PAD: u32 = 258;

/// The 256 byte symbols, then `<s>` (256), `</s>` (257), `<pad>` (258) as control tokens.
fn byte_tokenizer(bos: Option<u32>, pad: Option<u32>, add_bos: bool) -> Tokenizer {
    let mut tokens = byte_symbols();
    tokens.extend(["<s>", "</s>", "<pad>"].map(String::from));
    let mut token_types = vec![token_type::NORMAL; 256];
    token_types.extend([token_type::CONTROL; 3]);
    Tokenizer::from_bpe_vocab(BpeVocab {
        tokens,
        token_types,
        merges: vec![],
        pre: PreTokenizerKind::Smollm,
        bos,
        eos: Some(EOS),
        pad,
        add_bos,
    })
    .unwrap()
}

/// The ids of `text` under [`byte_tokenizer`]: its bytes.
fn bytes(text: &str) -> Vec<u32> {
    text.bytes().map(u32::from).collect()
}

fn row(history: &[&str], title: &str) -> Interaction {
    let n = history.len();
    Interaction {
        user_id: "U1".into(),
        history_asins: (0..n).map(|i| format!("A{i}")).collect(),
        item_asin: "B".into(),
        history_item_ids: (0..n as u32).collect(),
        item_id: n as u32,
        history_titles: history.iter().map(|t| t.to_string()).collect(),
        item_title: title.into(),
        history_ratings: vec![5.0; n],
        rating: 4.0,
        history_timestamps: (0..n as i64).collect(),
        timestamp: n as i64,
    }
}

const PAPER_INSTRUCTION: &str = "Below is an instruction that describes a task, paired with an input that provides \
     further context. Write a response that appropriately completes the request. \n\n### Instruction:\nGiven a list \
     of musics the user recetenly enjoy, please write a new musics that the user may bought\n";

#[test]
fn paper_prompt_is_bos_instruction_and_input() {
    let enc = Encoder::new(byte_tokenizer(Some(BOS), None, false), EncoderConfig::new("musics")).unwrap();
    let s = enc.encode_sample(&row(&["Abbey Road", "Help!"], "Revolver"), true).unwrap();
    let input = "### User Input: \nThe user has palyed the following musicss before: \"Abbey Road\", \"Help!\"\n\n\
                 ### Response: \n";
    let want: Vec<u32> = [vec![BOS], bytes(PAPER_INSTRUCTION), bytes(input)].concat();
    assert_eq!(s.prompt_ids, want);
    assert_eq!(s.n_thought, 1);
    assert_eq!(s.target_ids, [bytes("\"Revolver\"\n"), vec![EOS]].concat());
    // The sequence puts the thought id between prompt and target.
    let thought = enc.thought_id().unwrap();
    let seq = s.sequence(thought);
    assert_eq!(seq.len(), s.len());
    assert_eq!(seq[s.prompt_ids.len()], thought);
    assert_eq!(&seq[s.prompt_ids.len() + 1..], &s.target_ids[..]);
    assert_eq!(Template::Paper.user_input("musics", &["Abbey Road".into(), "Help!".into()]), input);
}

#[test]
fn bos_comes_first_whenever_the_tokenizer_defines_one() {
    let history = ["Abbey Road"];
    let first = |tok: Tokenizer, cfg: EncoderConfig| {
        let enc = Encoder::new(tok, cfg).unwrap();
        (enc.bos_id(), enc.encode_sample(&row(&history, "Help!"), false).unwrap().prompt_ids[0])
    };
    let b = u32::from(b'B'); // "Below is ..."
    // Defined BOS: prepended whatever `add_bos` says (SmolLM2 and Qwen2.5 GGUF files both set add_bos = false).
    assert_eq!(first(byte_tokenizer(Some(BOS), None, false), EncoderConfig::new("musics")), (Some(BOS), BOS));
    assert_eq!(first(byte_tokenizer(Some(BOS), None, true), EncoderConfig::new("musics")), (Some(BOS), BOS));
    // No BOS defined: the prompt starts with the instruction.
    assert_eq!(first(byte_tokenizer(None, None, false), EncoderConfig::new("musics")), (None, b));
    // Switched off (the HF-hub Qwen2.5 tokenizer, whose bos_token is null).
    let off = EncoderConfig::new("musics").with_bos(false);
    assert_eq!(first(byte_tokenizer(Some(BOS), None, false), off), (None, b));
}

#[test]
fn thought_token_is_added_only_with_latent_tokens() {
    let tok = byte_tokenizer(Some(BOS), None, false);
    let old = tok.vocab_size();
    let enc = Encoder::new(tok.clone(), EncoderConfig::new("musics").with_n_thought(3)).unwrap();
    assert_eq!(enc.thought_id(), Some(old as u32));
    assert_eq!(enc.tokenizer().vocab_size(), old + 1);
    assert_eq!(enc.tokenizer().encode("x<|Thought|>"), [u32::from(b'x'), old as u32]);
    assert_eq!(enc.encode_sample(&row(&["a"], "b"), true).unwrap().n_thought, 3);

    let bigrec = Encoder::new(tok, EncoderConfig::new("musics").with_n_thought(0)).unwrap();
    assert_eq!(bigrec.thought_id(), None);
    assert_eq!(bigrec.tokenizer().vocab_size(), old);
    let s = bigrec.encode_sample(&row(&["a"], "b"), true).unwrap();
    assert_eq!(s.n_thought, 0);
    assert_eq!(s.sequence(0), [s.prompt_ids.clone(), s.target_ids.clone()].concat());
}

#[test]
fn target_is_quoted_title_newline_eos_and_shared_with_samples() {
    let enc = Encoder::new(byte_tokenizer(Some(BOS), None, false), EncoderConfig::new("musics")).unwrap();
    for title in ["Help!", "AC/DC: \"Back in Black\"", "Sigur Rós", ""] {
        let ids = enc.encode_target(title);
        assert_eq!(ids, [bytes(&format!("\"{title}\"\n")), vec![EOS]].concat(), "{title:?}");
        assert_eq!(enc.tokenizer().decode(&ids), format!("\"{title}\"\n</s>"));
        // The SFT label ids of a sample are exactly the trie path of its title.
        assert_eq!(enc.encode_sample(&row(&["x"], title), true).unwrap().target_ids, ids);
    }
    assert!(enc.encode_sample(&row(&["x"], "Help!"), false).unwrap().target_ids.is_empty());
}

#[test]
fn truncation_keeps_the_end_of_the_sequence() {
    let history = ["Abbey Road", "Let It Be", "Rubber Soul"];
    let full = Encoder::new(byte_tokenizer(Some(BOS), None, false), EncoderConfig::new("musics").with_n_thought(2))
        .unwrap()
        .encode_sample(&row(&history, "Help!"), true)
        .unwrap();
    let thought = 259;
    let whole = full.sequence(thought);
    for cutoff in [whole.len() + 5, whole.len(), whole.len() - 1, 40, full.target_ids.len() + 3] {
        let enc = Encoder::new(
            byte_tokenizer(Some(BOS), None, false),
            EncoderConfig::new("musics").with_n_thought(2).with_cutoff(cutoff),
        )
        .unwrap();
        let s = enc.encode_sample(&row(&history, "Help!"), true).unwrap();
        let seq = s.sequence(thought);
        let keep = whole.len().min(cutoff);
        assert_eq!(seq.len(), keep, "cutoff {cutoff}");
        assert_eq!(seq, whole[whole.len() - keep..], "cutoff {cutoff}: the end is kept");
        assert_eq!((s.n_thought, &s.target_ids), (2, &full.target_ids), "cutoff {cutoff}: thoughts and target whole");
        assert_eq!(s.prompt_ids[0] == BOS, cutoff >= whole.len(), "cutoff {cutoff}: BOS goes first");
        // Without the target nothing is cut (the official evaluation prompts are not truncated).
        assert_eq!(enc.encode_sample(&row(&history, "Help!"), false).unwrap().prompt_ids, full.prompt_ids);
    }
}

#[test]
fn target_without_room_for_the_prompt_is_an_error_naming_the_title() {
    let title = "A Very Long Title That Cannot Fit";
    let target = title.len() + 3 + 1; // quotes, newline, EOS
    for cutoff in [target + 1, target - 4] {
        let enc =
            Encoder::new(byte_tokenizer(None, None, false), EncoderConfig::new("musics").with_cutoff(cutoff)).unwrap();
        let err = enc.encode_sample(&row(&["a"], title), true).unwrap_err();
        assert!(matches!(err, Error::SampleTooLong { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(title) && msg.contains("U1") && msg.contains("raise `cutoff`"), "{msg}");
        // The prompt alone still encodes.
        assert!(enc.encode_sample(&row(&["a"], title), false).is_ok());
    }
    // One prompt token left is enough.
    let enc =
        Encoder::new(byte_tokenizer(None, None, false), EncoderConfig::new("musics").with_cutoff(target + 2)).unwrap();
    assert_eq!(enc.encode_sample(&row(&["a"], title), true).unwrap().prompt_ids, bytes("\n"));
}

#[test]
fn corrected_template_fixes_the_typos() {
    let cat = "video games";
    let paper = Template::Paper.instruction(cat);
    let fixed = Template::Corrected.instruction(cat);
    let preamble = "Below is an instruction that describes a task, paired with an input that provides further \
                    context. Write a response that appropriately completes the request. \n\n### Instruction:\n";
    assert_eq!(
        paper,
        format!(
            "{preamble}Given a list of video games the user recetenly enjoy, please write a new video games that \
             the user may bought\n"
        )
    );
    assert_eq!(
        fixed,
        format!(
            "{preamble}Given a list of video games the user recently enjoyed, please write a new one that the user \
             may buy\n"
        )
    );
    let history = ["Halo".to_string(), "Doom".to_string()];
    assert_eq!(
        Template::Corrected.user_input(cat, &history),
        "### User Input: \nThe user has played the following video games before: \"Halo\", \"Doom\"\n\n### \
         Response: \n"
    );
    assert_eq!(
        Template::Paper.user_input(cat, &history),
        "### User Input: \nThe user has palyed the following video gamess before: \"Halo\", \"Doom\"\n\n### \
         Response: \n"
    );
    // The encoder uses the chosen template.
    let enc = Encoder::new(
        byte_tokenizer(None, None, false),
        EncoderConfig::new(cat).with_template(Template::Corrected).with_n_thought(0),
    )
    .unwrap();
    let s = enc.encode_sample(&row(&["Halo", "Doom"], "Quake"), false).unwrap();
    assert_eq!(enc.tokenizer().decode(&s.prompt_ids), fixed + &Template::Corrected.user_input(cat, &history));
    // Serde names of the templates and config defaults.
    let cfg: EncoderConfig = serde_json::from_str(r#"{"category": "musics", "template": "corrected"}"#).unwrap();
    assert_eq!(cfg, EncoderConfig::new("musics").with_template(Template::Corrected));
    assert_eq!((cfg.n_thought, cfg.cutoff, cfg.bos), (1, 512, true));
    assert!(serde_json::from_str::<EncoderConfig>(r#"{"category": "musics", "cutof": 5}"#).is_err());
}

#[test]
fn category_words_and_unknown_category_error() {
    let words: Vec<_> =
        [CDS, "Toys_and_Games", "Video_Games_5_2010", "Musical_Instruments", INDUSTRIAL, "Office_Products"]
            .iter()
            .map(|s| category_word(s).unwrap())
            .collect();
    assert_eq!(
        words,
        [
            "musics",
            "toys and games",
            "video games",
            "music instruments",
            "industrial and scientific items",
            "office products"
        ]
    );
    assert_eq!(EncoderConfig::for_dataset(CDS).unwrap().category, "musics");
    for bad in ["Books", "Video_Gamesx_5", "CDs"] {
        let err = category_word(bad).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(&err, Error::Setting { key, .. } if key == "category"), "{err:?}");
        assert!(msg.contains(bad) && msg.contains("EncoderConfig::new"), "{msg}");
        for (cat, _) in CATEGORY_WORDS {
            assert!(msg.contains(cat), "{msg} should list {cat}");
        }
        assert!(EncoderConfig::for_dataset(bad).is_err());
    }
    // Bad configs name their key.
    let tok = byte_tokenizer(None, None, false);
    let err = Encoder::new(tok.clone(), EncoderConfig::new(" ")).unwrap_err();
    assert!(matches!(&err, Error::Setting { key, .. } if key == "category"), "{err:?}");
    let err = Encoder::new(tok, EncoderConfig::new("musics").with_n_thought(2).with_cutoff(3)).unwrap_err();
    assert!(matches!(&err, Error::Setting { key, .. } if key == "cutoff"), "{err:?}");
}

/// Three samples of different prompt and target lengths: `(prompt, target)` with 1 thought.
fn samples() -> Vec<EncodedSample> {
    let s = |p: &[u32], t: &[u32]| EncodedSample { prompt_ids: p.to_vec(), n_thought: 1, target_ids: t.to_vec() };
    vec![s(&[1, 2, 3], &[10, EOS]), s(&[4], &[11, 12, 13, EOS]), s(&[5, 6], &[EOS])]
}

#[test]
fn batch_pads_prompts_left_and_targets_right() {
    const TH: u32 = 99;
    let b = SftBatch::new(&samples(), 1, TH, PAD);
    let (p, x) = (PAD, false);
    assert_eq!((b.rows, b.prompt_len, b.n_thought, b.target_len, b.thought_id, b.pad_id), (3, 3, 1, 4, TH, PAD));
    assert_eq!(b.prompt_ids, [1, 2, 3, p, p, 4, p, 5, 6]);
    assert_eq!(b.prompt_real, [true, true, true, x, x, true, x, true, true]);
    assert_eq!(b.target_ids, [10, EOS, p, p, 11, 12, 13, EOS, EOS, p, p, p]);
    assert_eq!(b.target_real, [true, true, x, x, true, true, true, true, true, x, x, x]);
    assert_eq!((b.prompt_lens(), b.target_lens()), (vec![3, 1, 2], vec![2, 4, 1]));
    assert_eq!((b.full_len(), b.thought_col()), (8, 3));
    for (i, s) in samples().iter().enumerate() {
        assert_eq!(&b.row(i), s);
    }

    let f = b.full();
    assert_eq!((f.rows, f.len), (3, 8));
    #[rustfmt::skip]
    let ids = [
        1, 2, 3, TH, 10, EOS, p, p,
        p, p, 4, TH, 11, 12, 13, EOS,
        p, 5, 6, TH, EOS, p, p, p,
    ];
    assert_eq!(f.ids, ids);
    let t = true;
    #[rustfmt::skip]
    let real = [
        t, t, t, t, t, t, x, x,
        x, x, t, t, t, t, t, t,
        x, t, t, t, t, x, x, x,
    ];
    assert_eq!(f.real, real);
    // Shifted labels: position q is scored against ids[q + 1]; the thought column (3) predicts target token 0.
    #[rustfmt::skip]
    let label_ids = [
        2, 3, TH, 10, EOS, p, p, p,
        p, 4, TH, 11, 12, 13, EOS, p,
        5, 6, TH, EOS, p, p, p, p,
    ];
    assert_eq!(f.label_ids, label_ids);
    #[rustfmt::skip]
    let label_mask = [
        x, x, x, t, t, x, x, x,
        x, x, x, t, t, t, t, x,
        x, x, x, t, x, x, x, x,
    ];
    assert_eq!(f.label_mask, label_mask);
    // The label mask counts every target token once.
    assert_eq!(f.label_mask.iter().filter(|&&m| m).count(), b.target_real.iter().filter(|&&m| m).count());
}

#[test]
fn batch_repeat_select_and_decoding_layout() {
    let b = SftBatch::new(&samples(), 1, 99, PAD);

    // GRPO: each prompt K times, consecutively.
    let g = b.repeat_rows(3);
    assert_eq!((g.rows, g.prompt_len, g.target_len), (9, 3, 4));
    for r in 0..9 {
        assert_eq!(g.row(r), b.row(r / 3), "row {r}");
    }
    assert_eq!(&g.prompt_ids[..9], &[1, 2, 3, 1, 2, 3, 1, 2, 3]);
    assert_eq!(b.repeat_rows(1), b);

    // Micro-batches: the chosen rows in order, re-padded to their own widths.
    let m = b.select_rows(&[2, 0]);
    assert_eq!((m.rows, m.prompt_len, m.target_len), (2, 3, 2));
    assert_eq!(m.prompt_ids, [PAD, 5, 6, 1, 2, 3]);
    assert_eq!(m.target_ids, [EOS, PAD, 10, EOS]);
    let m = b.select_rows(&[2]);
    assert_eq!((m.prompt_len, m.target_len, m.prompt_ids.clone()), (2, 1, vec![5, 6]));
    assert_eq!(b.select_rows(&[0, 1, 2]), b);

    // Decoding: T = 0, prompt + thoughts left-padded.
    let d = b.without_targets();
    assert_eq!((d.rows, d.prompt_len, d.target_len), (3, 3, 0));
    assert_eq!(d.full().ids, [1, 2, 3, 99, PAD, PAD, 4, 99, PAD, 5, 6, 99]);
    assert!(d.full().label_mask.iter().all(|&m| !m));
    assert_eq!(d.target_lens(), [0, 0, 0]);
    let no_target: Vec<_> = samples().into_iter().map(|s| EncodedSample { target_ids: vec![], ..s }).collect();
    assert_eq!(SftBatch::new(&no_target, 1, 99, PAD), d);
    assert_eq!(d.repeat_rows(2).rows, 6);

    // BIGRec: no thought columns.
    let s0: Vec<_> = samples().into_iter().map(|s| EncodedSample { n_thought: 0, ..s }).collect();
    let z = SftBatch::new(&s0, 0, 0, PAD);
    assert_eq!(&z.full().ids[..5], &[1, 2, 3, 10, EOS]);
    assert_eq!(&z.full().label_mask[..5], &[false, false, true, true, false]);
}

#[test]
fn encoder_batch_uses_the_pad_id_else_eos() {
    let rows = [row(&["a", "bb"], "c"), row(&["dddd"], "eeeeee")];
    for (pad, want) in [(Some(PAD), PAD), (None, EOS)] {
        let enc = Encoder::new(byte_tokenizer(Some(BOS), pad, false), EncoderConfig::new("musics")).unwrap();
        assert_eq!(enc.pad_id(), want);
        let s: Vec<_> = rows.iter().map(|r| enc.encode_sample(r, true).unwrap()).collect();
        let b = enc.batch(&s);
        assert_eq!((b.pad_id, b.thought_id, b.n_thought), (want, enc.thought_id().unwrap(), 1));
        let short = s[0].prompt_ids.len().min(s[1].prompt_ids.len());
        assert_eq!(b.prompt_len, s[0].prompt_ids.len().max(s[1].prompt_ids.len()));
        let padded_row = usize::from(s[0].prompt_ids.len() > s[1].prompt_ids.len());
        assert_eq!(b.prompt_ids[padded_row * b.prompt_len], want);
        assert_eq!(b.prompt_real[padded_row * b.prompt_len..].iter().filter(|&&m| m).count(), short);
    }
}

/// Every row of the real CDs and Industrial splits encodes; the prompt text decodes back to the template text of
/// its history, and with the default cutoff no target overflows.
#[test]
fn real_splits_encode_and_decode_back() {
    for stem in [CDS, INDUSTRIAL] {
        let data = Dataset::load(&data_root(), stem).unwrap();
        let enc =
            Encoder::new(byte_tokenizer(Some(BOS), None, false), EncoderConfig::for_dataset(stem).unwrap()).unwrap();
        let word = category_word(stem).unwrap();
        let rows = data.split(Split::Test);
        let mut truncated = 0;
        for (i, r) in rows.iter().enumerate() {
            let s = enc.encode_sample(r, true).unwrap();
            assert_eq!(s.target_ids, enc.encode_target(&r.item_title), "{stem} test row {i}");
            let prompt = enc.encode_sample(r, false).unwrap().prompt_ids;
            let text = Template::Paper.instruction(word) + &Template::Paper.user_input(word, &r.history_titles);
            assert_eq!(prompt[0], BOS);
            assert_eq!(enc.tokenizer().decode(&prompt[1..]), text, "{stem} test row {i}");
            assert!(s.len() <= 512);
            truncated += usize::from(s.prompt_ids.len() < prompt.len());
            assert!(prompt.ends_with(&s.prompt_ids), "{stem} test row {i}: truncation keeps the end");
        }
        // Bytes are ~4x more tokens than BPE, so many byte-level prompts exceed 512; the check is that it works.
        eprintln!("{stem}: {} test rows, {truncated} truncated at 512 byte tokens", rows.len());
    }
}
