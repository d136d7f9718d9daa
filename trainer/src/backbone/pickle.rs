//! A small, safe pickle reader: the subset of protocol 2 that `torch.save` (legacy format)
//! writes, with a whitelist of globals.
//!
//! Python's unpickler imports and calls whatever the stream names, so reading an untrusted
//! `.pth` with it can run arbitrary code. This reader never executes anything: `GLOBAL` may
//! only name the classes listed in [`Global`] (anything else is an error), `REDUCE` only builds
//! an empty `OrderedDict` or a tensor description, and persistent ids (`BINPERSID`) become
//! [`Value::Storage`] references that the caller resolves against the storages stored after
//! the pickles.

use std::cell::RefCell;
use std::rc::Rc;

use anyhow::{bail, ensure, Context, Result};

/// The globals a pickle may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Global {
    /// `collections.OrderedDict`: the state dict and the (empty) backward hooks.
    OrderedDict,
    /// `torch._utils._rebuild_tensor_v2`: a tensor as a view of a storage.
    RebuildTensorV2,
    /// `torch.<X>Storage`: a storage's element type.
    Storage(StorageType),
}

/// Element types of torch storages this reader can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageType {
    Float,
    Double,
    Half,
    Long,
    Int,
    Short,
    Char,
    Byte,
    Bool,
}

impl StorageType {
    /// Bytes per element in the raw storage data.
    pub fn element_size(self) -> usize {
        match self {
            StorageType::Double | StorageType::Long => 8,
            StorageType::Float | StorageType::Int => 4,
            StorageType::Half | StorageType::Short => 2,
            StorageType::Char | StorageType::Byte | StorageType::Bool => 1,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "FloatStorage" => StorageType::Float,
            "DoubleStorage" => StorageType::Double,
            "HalfStorage" => StorageType::Half,
            "LongStorage" => StorageType::Long,
            "IntStorage" => StorageType::Int,
            "ShortStorage" => StorageType::Short,
            "CharStorage" => StorageType::Char,
            "ByteStorage" => StorageType::Byte,
            "BoolStorage" => StorageType::Bool,
            _ => return None,
        })
    }
}

impl Global {
    /// Resolves `module.name` against the whitelist.
    pub fn resolve(module: &str, name: &str) -> Result<Self> {
        match (module, name) {
            ("collections", "OrderedDict") => Ok(Global::OrderedDict),
            ("torch._utils", "_rebuild_tensor_v2") => Ok(Global::RebuildTensorV2),
            ("torch", n) if StorageType::from_name(n).is_some() => {
                Ok(Global::Storage(StorageType::from_name(n).expect("checked")))
            }
            _ => bail!(
                "pickle global {module}.{name} is not allowed \
                 (only OrderedDict, _rebuild_tensor_v2 and torch storage types)"
            ),
        }
    }
}

/// A storage reference from a persistent id `('storage', type, key, location, size, ...)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageRef {
    pub dtype: StorageType,
    pub key: String,
    pub location: String,
    /// Number of elements.
    pub numel: usize,
}

/// A tensor as a strided view of a storage (`_rebuild_tensor_v2` arguments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorRef {
    pub storage: StorageRef,
    pub offset: usize,
    pub size: Vec<usize>,
    pub stride: Vec<usize>,
}

/// A pickled value. Lists and dicts are shared and mutable, as in Python: the memo and the
/// stack hold the same object, and `APPENDS`/`SETITEMS` after a `BINPUT` must be seen by a
/// later `BINGET`.
#[derive(Debug, Clone)]
pub enum Value {
    None,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Rc<RefCell<Vec<Value>>>),
    /// Insertion-ordered (dict and OrderedDict alike).
    Dict(Rc<RefCell<Vec<(Value, Value)>>>),
    Global(Global),
    Storage(StorageRef),
    Tensor(TensorRef),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Global(_) => "global",
            Value::Storage(_) => "storage",
            Value::Tensor(_) => "tensor",
        }
    }

    /// Dict keys compare by value for the hashable kinds a state dict uses.
    fn same_key(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::None, Value::None) => true,
            _ => false,
        }
    }

    pub fn as_int(&self) -> Result<i128> {
        match self {
            Value::Int(i) => Ok(*i),
            Value::Bool(b) => Ok(i128::from(*b)),
            other => bail!("expected an int, found {}", other.kind()),
        }
    }

    pub fn as_str(&self) -> Result<&str> {
        match self {
            Value::Str(s) => Ok(s),
            other => bail!("expected a str, found {}", other.kind()),
        }
    }

    /// The items of a tuple or a list (copied out).
    pub fn as_seq(&self) -> Result<Vec<Value>> {
        match self {
            Value::Tuple(v) => Ok(v.clone()),
            Value::List(v) => Ok(v.borrow().clone()),
            other => bail!("expected a tuple or list, found {}", other.kind()),
        }
    }

    /// The entries of a dict (copied out, in order).
    pub fn as_dict(&self) -> Result<Vec<(Value, Value)>> {
        match self {
            Value::Dict(d) => Ok(d.borrow().clone()),
            other => bail!("expected a dict, found {}", other.kind()),
        }
    }

    /// Looks a string key up in a dict.
    pub fn get(&self, key: &str) -> Result<Option<Value>> {
        Ok(self
            .as_dict()?
            .into_iter()
            .find(|(k, _)| matches!(k, Value::Str(s) if s == key))
            .map(|(_, v)| v))
    }
}

fn usize_of(v: &Value, what: &str) -> Result<usize> {
    let i = v.as_int().with_context(|| what.to_string())?;
    usize::try_from(i).with_context(|| format!("{what} {i} is negative or too large"))
}

/// `('storage', StorageType, key, location, numel[, view metadata])`.
fn persistent_load(pid: Value) -> Result<Value> {
    let t = pid.as_seq().context("persistent id")?;
    ensure!(
        t.len() >= 5,
        "persistent id has {} fields, expected ('storage', type, key, location, size)",
        t.len()
    );
    ensure!(
        t[0].as_str()? == "storage",
        "persistent id of kind {:?} is not a storage",
        t[0].as_str()?
    );
    let Value::Global(Global::Storage(dtype)) = t[1] else {
        bail!(
            "persistent id storage type is a {}, not a torch storage class",
            t[1].kind()
        );
    };
    Ok(Value::Storage(StorageRef {
        dtype,
        key: t[2].as_str().context("storage key")?.to_string(),
        location: t[3].as_str().context("storage location")?.to_string(),
        numel: usize_of(&t[4], "storage size")?,
    }))
}

/// `REDUCE` of a whitelisted callable.
fn reduce(callable: Value, args: Value) -> Result<Value> {
    let args = match args {
        Value::Tuple(a) => a,
        other => bail!("REDUCE arguments are a {}, not a tuple", other.kind()),
    };
    match callable {
        Value::Global(Global::OrderedDict) => {
            ensure!(
                args.is_empty(),
                "OrderedDict(...) with arguments is not supported"
            );
            Ok(Value::Dict(Rc::new(RefCell::new(Vec::new()))))
        }
        Value::Global(Global::RebuildTensorV2) => {
            // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
            ensure!(
                args.len() >= 4,
                "_rebuild_tensor_v2 takes at least 4 arguments, got {}",
                args.len()
            );
            let Value::Storage(storage) = &args[0] else {
                bail!("_rebuild_tensor_v2 storage is a {}", args[0].kind());
            };
            let dims = |v: &Value, what: &str| -> Result<Vec<usize>> {
                v.as_seq()?.iter().map(|d| usize_of(d, what)).collect()
            };
            let size = dims(&args[2], "tensor size")?;
            let stride = dims(&args[3], "tensor stride")?;
            ensure!(
                size.len() == stride.len(),
                "tensor size {size:?} and stride {stride:?} differ in rank"
            );
            Ok(Value::Tensor(TensorRef {
                storage: storage.clone(),
                offset: usize_of(&args[1], "storage offset")?,
                size,
                stride,
            }))
        }
        other => bail!("REDUCE of a {} is not allowed", other.kind()),
    }
}

/// Reads one pickle starting at `data[*pos]` and advances `pos` past its `STOP`.
pub fn load(data: &[u8], pos: &mut usize) -> Result<Value> {
    let start = *pos;
    let mut vm = Machine {
        data,
        pos: *pos,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: Vec::new(),
    };
    let v = vm.run().with_context(|| {
        format!(
            "pickle starting at byte {start}, failing near byte {}",
            vm.pos
        )
    })?;
    *pos = vm.pos;
    Ok(v)
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: Vec<Option<Value>>,
}

impl Machine<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .context("pickle data ends early")?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn line(&mut self) -> Result<String> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .context("unterminated text line")?;
        let s = std::str::from_utf8(&rest[..n])
            .context("text line is not UTF-8")?
            .to_string();
        self.pos += n + 1;
        Ok(s)
    }

    fn pop(&mut self) -> Result<Value> {
        let floor = self.marks.last().copied().unwrap_or(0);
        ensure!(self.stack.len() > floor, "stack underflow");
        Ok(self.stack.pop().expect("checked"))
    }

    fn top(&self) -> Result<&Value> {
        self.stack.last().context("stack underflow")
    }

    /// Items above the innermost mark (the mark is consumed).
    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let m = self.marks.pop().context("no MARK on the stack")?;
        Ok(self.stack.split_off(m))
    }

    fn memo_put(&mut self, idx: usize) -> Result<()> {
        ensure!(idx < 1 << 24, "memo index {idx} is implausibly large");
        let v = self.top()?.clone();
        if self.memo.len() <= idx {
            self.memo.resize(idx + 1, None);
        }
        self.memo[idx] = Some(v);
        Ok(())
    }

    fn memo_get(&mut self, idx: usize) -> Result<()> {
        let v = self
            .memo
            .get(idx)
            .cloned()
            .flatten()
            .with_context(|| format!("memo index {idx} is empty"))?;
        self.stack.push(v);
        Ok(())
    }

    fn set_items(dict: &Value, items: Vec<Value>) -> Result<()> {
        ensure!(
            items.len().is_multiple_of(2),
            "SETITEMS with an odd item count"
        );
        let Value::Dict(d) = dict else {
            bail!("SETITEM(S) on a {}", dict.kind());
        };
        let mut d = d.borrow_mut();
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            match d.iter_mut().find(|(old, _)| old.same_key(&k)) {
                Some(entry) => entry.1 = v,
                None => d.push((k, v)),
            }
        }
        Ok(())
    }

    fn run(&mut self) -> Result<Value> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    // PROTO
                    let v = self.u8()?;
                    ensure!(v <= 2, "pickle protocol {v} is not supported (only 2)");
                }
                b'.' => {
                    // STOP
                    ensure!(self.marks.is_empty(), "STOP with an open MARK");
                    let v = self.pop()?;
                    ensure!(
                        self.stack.is_empty(),
                        "STOP with {} values left",
                        self.stack.len()
                    );
                    return Ok(v);
                }
                b'(' => self.marks.push(self.stack.len()),
                b'}' => self.stack.push(Value::Dict(Rc::default())),
                b']' => self.stack.push(Value::List(Rc::default())),
                b')' => self.stack.push(Value::Tuple(Vec::new())),
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(items));
                }
                0x85..=0x87 => {
                    // TUPLE1..3
                    let n = usize::from(op - 0x84);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.stack.push(Value::Tuple(items));
                }
                b'q' => {
                    let i = self.u8()?;
                    self.memo_put(usize::from(i))?
                }
                b'r' => {
                    let i = self.u32()?;
                    self.memo_put(i as usize)?
                }
                b'h' => {
                    let i = self.u8()?;
                    self.memo_get(usize::from(i))?
                }
                b'j' => {
                    let i = self.u32()?;
                    self.memo_get(i as usize)?
                }
                b'X' => {
                    // BINUNICODE
                    let n = self.u32()? as usize;
                    let s = std::str::from_utf8(self.take(n)?)
                        .context("BINUNICODE is not UTF-8")?
                        .to_string();
                    self.stack.push(Value::Str(s));
                }
                b'U' => {
                    // SHORT_BINSTRING (a Python 2 str: bytes)
                    let n = usize::from(self.u8()?);
                    let b = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b));
                }
                b'T' => {
                    // BINSTRING
                    let n = self.u32()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b));
                }
                b'J' => {
                    let b = self.take(4)?;
                    let v = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    self.stack.push(Value::Int(i128::from(v)));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(i128::from(v)));
                }
                b'M' => {
                    let v = self.u16()?;
                    self.stack.push(Value::Int(i128::from(v)));
                }
                0x8a => {
                    // LONG1: little-endian two's complement of n bytes.
                    let n = usize::from(self.u8()?);
                    ensure!(n <= 16, "LONG1 of {n} bytes does not fit 128 bits");
                    let b = self.take(n)?;
                    let mut buf = if b.last().is_some_and(|&x| x & 0x80 != 0) {
                        [0xffu8; 16]
                    } else {
                        [0u8; 16]
                    };
                    buf[..n].copy_from_slice(b);
                    self.stack.push(Value::Int(i128::from_le_bytes(buf)));
                }
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'G' => {
                    let b = self.take(8)?;
                    let v = f64::from_be_bytes(b.try_into().expect("8 bytes"));
                    self.stack.push(Value::Float(v));
                }
                b'c' => {
                    // GLOBAL "module\nname\n": resolved against the whitelist, never imported.
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack
                        .push(Value::Global(Global::resolve(&module, &name)?));
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    self.stack.push(reduce(callable, args)?);
                }
                b'Q' => {
                    // BINPERSID
                    let pid = self.pop()?;
                    self.stack.push(persistent_load(pid)?);
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    Self::set_items(self.top()?, vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    Self::set_items(self.top()?, items)?;
                }
                b'a' => {
                    let v = self.pop()?;
                    match self.top()? {
                        Value::List(l) => l.borrow_mut().push(v),
                        other => bail!("APPEND to a {}", other.kind()),
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    match self.top()? {
                        Value::List(l) => l.borrow_mut().extend(items),
                        other => bail!("APPENDS to a {}", other.kind()),
                    }
                }
                b'b' => {
                    // BUILD: torch sets `_metadata` (module versions) on the state dict; it
                    // does not change any tensor, so the state is checked and dropped.
                    let state = self.pop()?;
                    ensure!(
                        matches!(self.top()?, Value::Dict(_)),
                        "BUILD on a {} is not supported",
                        self.top()?.kind()
                    );
                    ensure!(
                        matches!(state, Value::Dict(_)),
                        "BUILD state is a {}",
                        state.kind()
                    );
                }
                other => bail!("pickle opcode 0x{other:02x} is not supported"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_all(data: &[u8]) -> Result<Value> {
        let mut pos = 0;
        let v = load(data, &mut pos)?;
        assert_eq!(pos, data.len());
        Ok(v)
    }

    /// `pickle.dumps(119547037146038801333356, protocol=2)`: torch's magic number.
    #[test]
    fn long1_magic_number() {
        let bytes = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.";
        assert_eq!(
            load_all(bytes).unwrap().as_int().unwrap(),
            0x1950a86a20f9469cfc6c
        );
        // -1 as LONG1 of one byte.
        assert_eq!(
            load_all(b"\x80\x02\x8a\x01\xff.")
                .unwrap()
                .as_int()
                .unwrap(),
            -1
        );
    }

    /// `pickle.dumps({'a': [1, 2.5, None, True], 'b': (300, -5, 70000)}, protocol=2)`.
    #[test]
    fn containers_and_scalars() {
        let bytes = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01G@\x04\x00\x00\x00\x00\x00\x00N\x88eX\x01\x00\x00\x00bq\x03M,\x01J\xfb\xff\xff\xffJp\x11\x01\x00\x87q\x04u.";
        let v = load_all(bytes).unwrap();
        let a = v.get("a").unwrap().unwrap().as_seq().unwrap();
        assert_eq!(a[0].as_int().unwrap(), 1);
        assert!(matches!(a[1], Value::Float(f) if f == 2.5));
        assert!(matches!(a[2], Value::None));
        assert!(matches!(a[3], Value::Bool(true)));
        let b: Vec<i128> = v
            .get("b")
            .unwrap()
            .unwrap()
            .as_seq()
            .unwrap()
            .iter()
            .map(|x| x.as_int().unwrap())
            .collect();
        assert_eq!(b, vec![300, -5, 70000]);
    }

    /// A list memoised before it is filled, then fetched again: the fetched list is the
    /// filled one (shared, as in Python).
    #[test]
    fn memo_shares_mutable_containers() {
        // ([], then APPEND 7, then the tuple (memo[0], memo[0]))
        let bytes = b"\x80\x02]q\x00K\x07ah\x00\x86.";
        let t = load_all(bytes).unwrap().as_seq().unwrap();
        assert_eq!(t[0].as_seq().unwrap().len(), 1);
        assert_eq!(t[1].as_seq().unwrap()[0].as_int().unwrap(), 7);
    }

    #[test]
    fn globals_are_whitelisted() {
        let evil = b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.";
        let err = load_all(evil).unwrap_err();
        assert!(
            format!("{err:#}").contains("os.system is not allowed"),
            "{err:#}"
        );
        let builtins = b"\x80\x02cbuiltins\neval\n.";
        assert!(load_all(builtins).is_err());
        assert_eq!(
            Global::resolve("torch", "FloatStorage").unwrap(),
            Global::Storage(StorageType::Float)
        );
        assert!(Global::resolve("torch", "load").is_err());
    }

    #[test]
    fn tensor_from_persistent_storage() {
        // _rebuild_tensor_v2(('storage', FloatStorage, '7', 'cpu', 6), 0, (2, 3), (3, 1), False, OrderedDict())
        let mut p = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n(".to_vec();
        p.extend_from_slice(b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x007X\x03\x00\x00\x00cpuK\x06tQ");
        p.extend_from_slice(
            b"K\x00K\x02K\x03\x86K\x03K\x01\x86\x89ccollections\nOrderedDict\n)RtR.",
        );
        let Value::Tensor(t) = load_all(&p).unwrap() else {
            panic!("not a tensor")
        };
        assert_eq!(t.storage.key, "7");
        assert_eq!(t.storage.numel, 6);
        assert_eq!(t.storage.dtype, StorageType::Float);
        assert_eq!((t.offset, t.size, t.stride), (0, vec![2, 3], vec![3, 1]));
    }

    #[test]
    fn malformed_streams() {
        for bad in [
            &b"\x80\x02K"[..],             // truncated argument
            b"\x80\x02K\x01",              // no STOP
            b"\x80\x05K\x01.",             // protocol 5
            b"\x80\x02(K\x01.",            // STOP inside a MARK
            b"\x80\x02h\x03.",             // empty memo slot
            b"\x80\x02K\x01K\x02s.",       // SETITEM on an int
            b"\x80\x02\xff.",              // unknown opcode
            b"\x80\x02t.",                 // TUPLE without MARK
            b"\x80\x02K\x01K\x02.",        // two values left
            b"\x80\x02X\xff\xff\xff\xff.", // string longer than the data
        ] {
            assert!(load_all(bad).is_err(), "{bad:?}");
        }
    }
}
