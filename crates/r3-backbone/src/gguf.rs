//! GGUF v2/v3 files: header, metadata of every value type, tensor infos, alignment, and tensor data.
//!
//! Layout (ggml `docs/gguf.md`): magic `GGUF`, `u32` version, `u64` tensor count, `u64` metadata count, the
//! metadata key/value pairs, the tensor infos (name, `u32` number of dims, `u64` dims innermost first, `u32` type,
//! `u64` offset relative to the data section), padding to `general.alignment` (default 32), then the data.
//! All integers are little-endian; strings are a `u64` length and UTF-8 bytes.
//!
//! The reader never trusts a length: every count and size is checked against the bytes that remain in the file
//! before anything is allocated, so a truncated or corrupt file is an [`Error::Gguf`] naming the byte offset,
//! never a panic, an out-of-bounds read or a huge allocation.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::dequant::{GgmlType, dequantize};
use crate::error::{Error, Result};

/// The largest number of dimensions a ggml tensor has.
const MAX_DIMS: u32 = 4;

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `u8`.
    U8(u8),
    /// `i8`.
    I8(i8),
    /// `u16`.
    U16(u16),
    /// `i16`.
    I16(i16),
    /// `u32`.
    U32(u32),
    /// `i32`.
    I32(i32),
    /// `f32`.
    F32(f32),
    /// `bool`.
    Bool(bool),
    /// A UTF-8 string.
    String(String),
    /// A homogeneous array.
    Array(Vec<Value>),
    /// `u64`.
    U64(u64),
    /// `i64`.
    I64(i64),
    /// `f64`.
    F64(f64),
}

impl Value {
    /// The value as an unsigned integer, if it is a non-negative integer of any width.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a float, if it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::I64(v) => Some(v as f64),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    /// The value as a string slice.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// Where a tensor lives in the file and what it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// The tensor name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions, innermost first (ggml order): a `[out, in]` matrix is listed as `[in, out]`.
    pub dims: Vec<u64>,
    /// The storage type.
    pub ggml_type: GgmlType,
    /// Byte offset relative to the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    /// The number of elements.
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// The shape in row-major order (outermost first), as burn and PyTorch write it.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }

    /// The number of bytes the tensor occupies.
    pub fn n_bytes(&self) -> u64 {
        self.ggml_type.row_bytes(self.n_elements())
    }
}

/// A parsed GGUF header: version, metadata and tensor infos, and where the data section starts.
#[derive(Debug, Clone)]
pub struct Gguf {
    /// The file the header came from (`<memory>` for [`Gguf::parse`]).
    pub path: PathBuf,
    /// The format version (2 or 3).
    pub version: u32,
    /// Metadata by key.
    pub metadata: BTreeMap<String, Value>,
    /// Tensor infos in file order.
    pub tensors: Vec<TensorInfo>,
    /// Alignment of the data section and of every tensor offset.
    pub alignment: u64,
    /// Absolute byte offset of the data section.
    pub data_offset: u64,
    /// The file size in bytes.
    pub file_len: u64,
}

/// A reader that knows how many bytes remain, so that lengths can be checked before allocation.
struct Cursor<R> {
    inner: R,
    pos: u64,
    len: u64,
    path: PathBuf,
}

impl<R: Read> Cursor<R> {
    fn corrupt(&self, message: impl Into<String>) -> Error {
        Error::Gguf { path: self.path.clone(), offset: self.pos, message: message.into() }
    }

    fn need(&self, n: u64, what: &str) -> Result<()> {
        if n > self.len.saturating_sub(self.pos) {
            return Err(self.corrupt(format!(
                "{what} needs {n} bytes but only {} remain: the file is truncated (download it again)",
                self.len.saturating_sub(self.pos)
            )));
        }
        Ok(())
    }

    fn bytes<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        self.need(N as u64, what)?;
        let mut b = [0u8; N];
        self.inner.read_exact(&mut b).map_err(|e| self.corrupt(format!("reading {what}: {e}")))?;
        self.pos += N as u64;
        Ok(b)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.bytes(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.bytes(what)?))
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let n = self.u64(what)?;
        self.need(n, what)?;
        let mut buf = vec![0u8; n as usize];
        self.inner.read_exact(&mut buf).map_err(|e| self.corrupt(format!("reading {what}: {e}")))?;
        self.pos += n;
        String::from_utf8(buf).map_err(|_| self.corrupt(format!("{what} is not UTF-8")))
    }

    fn value(&mut self, ty: u32, what: &str, depth: u32) -> Result<Value> {
        Ok(match ty {
            0 => Value::U8(self.bytes::<1>(what)?[0]),
            1 => Value::I8(self.bytes::<1>(what)?[0] as i8),
            2 => Value::U16(u16::from_le_bytes(self.bytes(what)?)),
            3 => Value::I16(i16::from_le_bytes(self.bytes(what)?)),
            4 => Value::U32(self.u32(what)?),
            5 => Value::I32(i32::from_le_bytes(self.bytes(what)?)),
            6 => Value::F32(f32::from_le_bytes(self.bytes(what)?)),
            7 => match self.bytes::<1>(what)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(self.corrupt(format!("{what}: boolean byte {b} is neither 0 nor 1"))),
            },
            8 => Value::String(self.string(what)?),
            9 => {
                if depth > 2 {
                    return Err(self.corrupt(format!("{what}: arrays nested more than twice")));
                }
                let elem = self.u32(what)?;
                let n = self.u64(what)?;
                // Every element takes at least one byte: a count beyond the remaining bytes is corrupt.
                let min = match elem {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    8..=12 => 8,
                    _ => return Err(self.corrupt(format!("{what}: unknown array element type {elem}"))),
                };
                self.need(n.saturating_mul(min), what)?;
                let mut v = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    v.push(self.value(elem, what, depth + 1)?);
                }
                Value::Array(v)
            }
            10 => Value::U64(self.u64(what)?),
            11 => Value::I64(i64::from_le_bytes(self.bytes(what)?)),
            12 => Value::F64(f64::from_le_bytes(self.bytes(what)?)),
            _ => return Err(self.corrupt(format!("{what}: unknown metadata value type {ty}"))),
        })
    }
}

impl Gguf {
    /// Reads the header of the GGUF file at `path` (the tensor data stays on disk).
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::Io { path: path.to_path_buf(), action: "open", source: e })?;
        let len = file.metadata().map_err(|e| Error::Io { path: path.to_path_buf(), action: "stat", source: e })?.len();
        Self::read_header(BufReader::with_capacity(1 << 20, file), len, path)
    }

    /// Parses a header from bytes in memory (the whole file, or at least its header plus a declared length).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        Self::read_header(bytes, bytes.len() as u64, Path::new("<memory>"))
    }

    fn read_header<R: Read>(inner: R, len: u64, path: &Path) -> Result<Self> {
        let mut c = Cursor { inner, pos: 0, len, path: path.to_path_buf() };
        let magic = c.bytes::<4>("the magic number")?;
        if &magic != b"GGUF" {
            return Err(c.corrupt(format!("magic {magic:?} is not `GGUF`: not a GGUF file")));
        }
        let version = c.u32("the version")?;
        if !(2..=3).contains(&version) {
            return Err(c.corrupt(format!("version {version}: only GGUF v2 and v3 are supported")));
        }
        let n_tensors = c.u64("the tensor count")?;
        let n_kv = c.u64("the metadata count")?;
        // A key/value pair takes at least 12 bytes and a tensor info at least 28.
        c.need(n_kv.saturating_mul(12).saturating_add(n_tensors.saturating_mul(28)), "the declared entries")?;
        let mut metadata = BTreeMap::new();
        for i in 0..n_kv {
            let key = c.string(&format!("metadata key {i}"))?;
            let ty = c.u32(&format!("the type of `{key}`"))?;
            let value = c.value(ty, &format!("metadata `{key}`"), 0)?;
            metadata.insert(key, value);
        }
        let alignment = match metadata.get("general.alignment") {
            None => 32,
            Some(v) => match v.as_u64() {
                Some(a) if a > 0 && a.is_power_of_two() => a,
                _ => return Err(c.corrupt(format!("general.alignment {v:?} is not a power of two"))),
            },
        };
        let mut tensors = Vec::with_capacity(n_tensors as usize);
        for i in 0..n_tensors {
            let name = c.string(&format!("tensor name {i}"))?;
            let n_dims = c.u32(&format!("the dims of `{name}`"))?;
            if n_dims == 0 || n_dims > MAX_DIMS {
                return Err(c.corrupt(format!("tensor `{name}` has {n_dims} dimensions (1..={MAX_DIMS} allowed)")));
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                dims.push(c.u64(&format!("a dim of `{name}`"))?);
            }
            let type_id = c.u32(&format!("the type of `{name}`"))?;
            let ggml_type = GgmlType::from_id(type_id)
                .ok_or_else(|| c.corrupt(format!("tensor `{name}` has unknown ggml type {type_id}")))?;
            let offset = c.u64(&format!("the offset of `{name}`"))?;
            tensors.push(TensorInfo { name, dims, ggml_type, offset });
        }
        let data_offset = c.pos.div_ceil(alignment) * alignment;
        let data_len = len.saturating_sub(data_offset);
        for t in &tensors {
            let n = t.dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
            let Some(n) = n.filter(|&n| n > 0) else {
                return Err(c.corrupt(format!("tensor `{}` has dims {:?}: empty or overflowing", t.name, t.dims)));
            };
            if n % t.ggml_type.block_len() != 0 || t.dims[0] % t.ggml_type.block_len() != 0 {
                return Err(c.corrupt(format!(
                    "tensor `{}`: rows of {} elements are not whole {:?} blocks of {}",
                    t.name,
                    t.dims[0],
                    t.ggml_type,
                    t.ggml_type.block_len()
                )));
            }
            if t.offset % alignment != 0 {
                return Err(c.corrupt(format!("tensor `{}` offset {} is not aligned to {alignment}", t.name, t.offset)));
            }
            let end = t.offset.checked_add(t.ggml_type.row_bytes(n));
            if end.is_none_or(|e| e > data_len) {
                return Err(c.corrupt(format!(
                    "tensor `{}` ends past the end of the file ({} data bytes): the file is truncated",
                    t.name, data_len
                )));
            }
        }
        Ok(Gguf { path: path.to_path_buf(), version, metadata, tensors, alignment, data_offset, file_len: len })
    }

    /// The tensor info named `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// A metadata value, or an error naming the key.
    pub fn get(&self, key: &str) -> Result<&Value> {
        self.metadata.get(key).ok_or_else(|| Error::Metadata {
            path: self.path.clone(),
            key: key.into(),
            message: "missing".into(),
        })
    }

    /// A metadata string.
    pub fn get_str(&self, key: &str) -> Result<&str> {
        self.get(key)?.as_str().ok_or_else(|| self.wrong_type(key, "a string"))
    }

    /// A metadata unsigned integer (any integer width).
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        self.get(key)?.as_u64().ok_or_else(|| self.wrong_type(key, "a non-negative integer"))
    }

    /// A metadata number.
    pub fn get_f64(&self, key: &str) -> Result<f64> {
        self.get(key)?.as_f64().ok_or_else(|| self.wrong_type(key, "a number"))
    }

    /// A metadata array of strings.
    pub fn get_strings(&self, key: &str) -> Result<Vec<&str>> {
        let arr = self.get(key)?.as_array().ok_or_else(|| self.wrong_type(key, "an array"))?;
        arr.iter().map(|v| v.as_str().ok_or_else(|| self.wrong_type(key, "an array of strings"))).collect()
    }

    fn wrong_type(&self, key: &str, want: &str) -> Error {
        Error::Metadata { path: self.path.clone(), key: key.into(), message: format!("expected {want}") }
    }

    /// Reads the raw bytes of `tensor` from the file.
    pub fn read_raw(&self, file: &mut File, tensor: &TensorInfo) -> Result<Vec<u8>> {
        let io = |action, e| Error::Io { path: self.path.clone(), action, source: e };
        file.seek(SeekFrom::Start(self.data_offset + tensor.offset)).map_err(|e| io("seek", e))?;
        let mut buf = vec![0u8; tensor.n_bytes() as usize];
        file.read_exact(&mut buf).map_err(|e| io("read tensor data", e))?;
        Ok(buf)
    }

    /// Reads and dequantises `tensor` to f32 values in file order (row-major, outermost dimension first).
    pub fn read_f32(&self, file: &mut File, tensor: &TensorInfo) -> Result<Vec<f32>> {
        let raw = self.read_raw(file, tensor)?;
        dequantize(tensor.ggml_type, &raw, tensor.n_elements() as usize).map_err(|m| Error::Gguf {
            path: self.path.clone(),
            offset: self.data_offset + tensor.offset,
            message: format!("tensor `{}`: {m}", tensor.name),
        })
    }

    /// Opens the file for tensor reads.
    pub fn open_data(&self) -> Result<File> {
        File::open(&self.path).map_err(|e| Error::Io { path: self.path.clone(), action: "open", source: e })
    }
}

/// Writes a GGUF v3 file in memory: for tests and fuzzing seeds (metadata of scalar and string values, and
/// tensors given as raw bytes).
pub fn write_gguf(metadata: &[(&str, Value)], tensors: &[(&str, &[u64], GgmlType, &[u8])], alignment: u64) -> Vec<u8> {
    fn s(out: &mut Vec<u8>, x: &str) {
        out.extend_from_slice(&(x.len() as u64).to_le_bytes());
        out.extend_from_slice(x.as_bytes());
    }
    fn v(out: &mut Vec<u8>, x: &Value) {
        match x {
            Value::U8(a) => out.push(*a),
            Value::I8(a) => out.push(*a as u8),
            Value::U16(a) => out.extend_from_slice(&a.to_le_bytes()),
            Value::I16(a) => out.extend_from_slice(&a.to_le_bytes()),
            Value::U32(a) => out.extend_from_slice(&a.to_le_bytes()),
            Value::I32(a) => out.extend_from_slice(&a.to_le_bytes()),
            Value::F32(a) => out.extend_from_slice(&a.to_le_bytes()),
            Value::Bool(a) => out.push(u8::from(*a)),
            Value::String(a) => s(out, a),
            Value::Array(items) => {
                out.extend_from_slice(&items.first().map_or(4, type_id).to_le_bytes());
                out.extend_from_slice(&(items.len() as u64).to_le_bytes());
                for i in items {
                    v(out, i);
                }
            }
            Value::U64(a) => out.extend_from_slice(&a.to_le_bytes()),
            Value::I64(a) => out.extend_from_slice(&a.to_le_bytes()),
            Value::F64(a) => out.extend_from_slice(&a.to_le_bytes()),
        }
    }
    fn type_id(x: &Value) -> u32 {
        match x {
            Value::U8(_) => 0,
            Value::I8(_) => 1,
            Value::U16(_) => 2,
            Value::I16(_) => 3,
            Value::U32(_) => 4,
            Value::I32(_) => 5,
            Value::F32(_) => 6,
            Value::Bool(_) => 7,
            Value::String(_) => 8,
            Value::Array(_) => 9,
            Value::U64(_) => 10,
            Value::I64(_) => 11,
            Value::F64(_) => 12,
        }
    }
    let mut out = b"GGUF".to_vec();
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    for (k, val) in metadata {
        s(&mut out, k);
        out.extend_from_slice(&type_id(val).to_le_bytes());
        v(&mut out, val);
    }
    let mut offset = 0u64;
    let mut offsets = Vec::new();
    for (name, dims, ty, data) in tensors {
        s(&mut out, name);
        out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
        for d in *dims {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&ty.id().to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        offsets.push(offset);
        offset = (offset + data.len() as u64).div_ceil(alignment) * alignment;
    }
    let pad = |out: &mut Vec<u8>| out.resize((out.len() as u64).div_ceil(alignment) as usize * alignment as usize, 0);
    pad(&mut out);
    for (_, _, _, data) in tensors {
        out.extend_from_slice(data);
        pad(&mut out);
    }
    out
}
