//! Reading PyTorch's legacy (pre-1.6, non-zip) `torch.save` format without PyTorch.
//!
//! The file is five pickles followed by raw storages:
//! 1. the magic number `0x1950a86a20f9469cfc6c`;
//! 2. the protocol version, 1001;
//! 3. a sys-info dict (`little_endian` must be true);
//! 4. the object itself, here a state dict whose tensors are
//!    `_rebuild_tensor_v2(storage, offset, size, stride, ...)` and whose storages are persistent
//!    ids `('storage', torch.XStorage, key, location, numel)`;
//! 5. the list of storage keys, in the order the storages follow;
//!
//! then, per key in that order, an int64 element count and the little-endian elements.
//! Tensors may be any strided view of a storage (the EfficientNet weights are stored
//! channels-last and transposed), so each is gathered into a contiguous row-major array.

use std::collections::{BTreeMap, HashMap};

use anyhow::{bail, ensure, Context, Result};

use super::pickle::{self, StorageType, Value};

/// `torch.serialization.MAGIC_NUMBER`.
pub const MAGIC_NUMBER: i128 = 0x1950a86a20f9469cfc6c;
/// `torch.serialization.PROTOCOL_VERSION`.
pub const PROTOCOL_VERSION: i128 = 1001;

/// A tensor's values, contiguous and row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// One tensor of a state dict.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: TensorData,
}

impl Tensor {
    /// The values of a float tensor.
    pub fn f32(&self) -> Result<&[f32]> {
        match &self.data {
            TensorData::F32(v) => Ok(v),
            TensorData::I64(_) => bail!("tensor is int64, not float32"),
        }
    }
}

/// Tensors by name, sorted.
pub type StateDict = BTreeMap<String, Tensor>;

/// Parses a legacy `.pth` file holding a state dict of float32 and int64 tensors.
pub fn read_legacy_state_dict(bytes: &[u8]) -> Result<StateDict> {
    let mut pos = 0;
    let magic = pickle::load(bytes, &mut pos).context("magic number")?;
    ensure!(
        magic.as_int().ok() == Some(MAGIC_NUMBER),
        "not a legacy torch.save file (no magic number; zip-format files are not supported)"
    );
    let protocol = pickle::load(bytes, &mut pos).context("protocol version")?;
    ensure!(
        protocol.as_int()? == PROTOCOL_VERSION,
        "torch serialisation protocol {:?} is not {PROTOCOL_VERSION}",
        protocol.as_int()?
    );
    let sys_info = pickle::load(bytes, &mut pos).context("sys info")?;
    ensure!(
        matches!(sys_info.get("little_endian")?, Some(Value::Bool(true))),
        "the file was written on a big-endian machine"
    );
    let root = pickle::load(bytes, &mut pos).context("state dict")?;
    let keys: Vec<String> = pickle::load(bytes, &mut pos)
        .context("storage keys")?
        .as_seq()?
        .iter()
        .map(|k| k.as_str().map(str::to_string))
        .collect::<Result<_>>()?;

    // Raw storages, in key order.
    let mut storages: HashMap<String, (usize, usize)> = HashMap::new(); // key -> (start, numel)
    let mut elem_size: HashMap<String, usize> = HashMap::new();
    let entries = root
        .as_dict()
        .context("the saved object is not a state dict")?;
    for (_, v) in &entries {
        if let Value::Tensor(t) = v {
            elem_size.insert(t.storage.key.clone(), t.storage.dtype.element_size());
        }
    }
    for key in &keys {
        let head = bytes
            .get(pos..pos + 8)
            .with_context(|| format!("storage {key}: the file ends before its size"))?;
        let numel = i64::from_le_bytes(head.try_into().expect("8 bytes"));
        let numel =
            usize::try_from(numel).with_context(|| format!("storage {key}: size {numel}"))?;
        pos += 8;
        let size = *elem_size
            .get(key)
            .with_context(|| format!("storage {key} is not used by any tensor"))?;
        let len = numel
            .checked_mul(size)
            .filter(|&l| pos + l <= bytes.len())
            .with_context(|| {
                format!("storage {key}: {numel} elements run past the end of the file")
            })?;
        storages.insert(key.clone(), (pos, numel));
        pos += len;
    }
    ensure!(
        pos == bytes.len(),
        "{} bytes left after the last storage",
        bytes.len() - pos
    );

    let mut out = StateDict::new();
    for (k, v) in entries {
        let name = k.as_str().context("state dict key")?.to_string();
        let Value::Tensor(t) = v else {
            bail!("state dict entry {name} is not a tensor");
        };
        let &(start, numel) = storages
            .get(&t.storage.key)
            .with_context(|| format!("{name}: storage {} is not in the file", t.storage.key))?;
        ensure!(
            numel == t.storage.numel,
            "{name}: storage {} holds {numel} elements, its id says {}",
            t.storage.key,
            t.storage.numel
        );
        // Bounds: the farthest element the view reads must lie in the storage.
        let count: usize = t.size.iter().product();
        if count > 0 {
            let last = t.offset
                + t.size
                    .iter()
                    .zip(&t.stride)
                    .map(|(&n, &s)| (n - 1) * s)
                    .sum::<usize>();
            ensure!(
                last < numel,
                "{name}: view {:?}/{:?}+{} reads past its storage of {numel}",
                t.size,
                t.stride,
                t.offset
            );
        }
        let index = strided_indices(&t.size, &t.stride, t.offset);
        let raw = &bytes[start..];
        let data = match t.storage.dtype {
            StorageType::Float => TensorData::F32(
                index
                    .map(|i| f32::from_le_bytes(raw[i * 4..i * 4 + 4].try_into().expect("4 bytes")))
                    .collect(),
            ),
            StorageType::Long => TensorData::I64(
                index
                    .map(|i| i64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().expect("8 bytes")))
                    .collect(),
            ),
            other => bail!("{name}: storage type {other:?} is not supported (float32, int64)"),
        };
        out.insert(
            name,
            Tensor {
                shape: t.size.clone(),
                data,
            },
        );
    }
    Ok(out)
}

/// Storage indices of a strided view, in row-major order of the view.
fn strided_indices<'a>(
    size: &'a [usize],
    stride: &'a [usize],
    offset: usize,
) -> impl Iterator<Item = usize> + 'a {
    let count: usize = size.iter().product();
    (0..count).map(move |mut flat| {
        let mut idx = offset;
        for d in (0..size.len()).rev() {
            idx += (flat % size[d]) * stride[d];
            flat /= size[d];
        }
        idx
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_gather_order() {
        // A 2x3 view transposed from a 3x2 row-major storage: stride (1, 2).
        let idx: Vec<usize> = strided_indices(&[2, 3], &[1, 2], 0).collect();
        assert_eq!(idx, vec![0, 2, 4, 1, 3, 5]);
        let idx: Vec<usize> = strided_indices(&[], &[], 5).collect();
        assert_eq!(idx, vec![5]);
    }

    /// A hand-assembled legacy file: one 2x2 float tensor stored transposed (stride (1, 2)).
    fn tiny_file(numel_in_id: u8, stride: [u8; 2]) -> Vec<u8> {
        let mut f = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.".to_vec();
        f.extend_from_slice(b"\x80\x02M\xe9\x03.");
        f.extend_from_slice(b"\x80\x02}(X\x0d\x00\x00\x00little_endian\x88u.");
        f.extend_from_slice(b"\x80\x02ccollections\nOrderedDict\n)R(X\x01\x00\x00\x00w");
        f.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n(");
        f.extend_from_slice(b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x009X\x03\x00\x00\x00cpuK");
        f.push(numel_in_id);
        f.extend_from_slice(b"NtQK\x00K\x02K\x02\x86K");
        f.push(stride[0]);
        f.push(b'K');
        f.push(stride[1]);
        f.extend_from_slice(b"\x86\x89ccollections\nOrderedDict\n)RtRu.");
        f.extend_from_slice(b"\x80\x02](X\x01\x00\x00\x009e.");
        f.extend_from_slice(&4i64.to_le_bytes());
        for v in [1.0f32, 2.0, 3.0, 4.0] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        f
    }

    #[test]
    fn reads_a_strided_state_dict() {
        let sd = read_legacy_state_dict(&tiny_file(4, [1, 2])).unwrap();
        let w = &sd["w"];
        assert_eq!(w.shape, vec![2, 2]);
        // storage [1, 2, 3, 4] viewed with stride (1, 2): [[1, 3], [2, 4]]
        assert_eq!(w.f32().unwrap(), &[1.0, 3.0, 2.0, 4.0]);
    }

    #[test]
    fn rejects_inconsistent_files() {
        // Element count in the persistent id disagrees with the stored one.
        assert!(read_legacy_state_dict(&tiny_file(5, [1, 2])).is_err());
        // A view reading past its storage.
        assert!(read_legacy_state_dict(&tiny_file(4, [2, 2])).is_err());
        // Truncated storages, trailing garbage, no magic.
        let f = tiny_file(4, [1, 2]);
        assert!(read_legacy_state_dict(&f[..f.len() - 1]).is_err());
        let mut longer = f.clone();
        longer.push(0);
        assert!(read_legacy_state_dict(&longer).is_err());
        assert!(read_legacy_state_dict(&f[15..]).is_err());
    }
}
