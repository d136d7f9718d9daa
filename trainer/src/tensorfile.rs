//! The trainer's files of numbers: the model file, the training checkpoint and the feature
//! cache are each a [safetensors](https://github.com/huggingface/safetensors) file, written and
//! read here through the `safetensors` crate.
//!
//! A safetensors file is an 8-byte little-endian length `N`, `N` bytes of JSON header (the
//! tensor table and `__metadata__`, a map of strings), then the tensors' bytes (little-endian,
//! row-major). Ours hold one `__metadata__` entry, under the [`Format::key`] of the kind of
//! file: the JSON of its typed description, beginning with `"format"` and `"format_version"`
//! ([`Format::name`], [`Format::version`]), so `head -c 4096 file` shows what the file is.
//! A reader checks the format and the version before it reads anything else, and every error
//! says what is wrong ([`Error`]): a file cut short, another kind of file, another version
//! (with what to do), a missing tensor, a tensor of the wrong type or rank.

use std::collections::HashMap;

use ndarray::{Array2, ArrayBase, Data, Ix2};
use safetensors::tensor::View;
use safetensors::{Dtype, SafeTensorError, SafeTensors};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One kind of tensor file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    /// The `format` its description names (`ics-train model`); errors call the file an
    /// "`{name}` file".
    pub name: &'static str,
    /// The `__metadata__` key holding the description.
    pub key: &'static str,
    /// The version this trainer writes.
    pub version: u32,
    /// The oldest version this trainer reads.
    pub oldest: u32,
    /// What to do with a file older than [`Format::oldest`].
    pub older_advice: &'static str,
}

/// What is wrong with a tensor file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("truncated: the file ends early ({0})")]
    Truncated(SafeTensorError),
    #[error("not an {format} file")]
    NotOurs { format: &'static str },
    #[error("not an {format} file: its format is {found:?}")]
    OtherFormat { format: &'static str, found: String },
    #[error(
        "{format} file format version {found}; this ics-train reads {}: {}",
        versions(*.oldest, *.newest),
        what_to_do(*.found, *.newest, .advice)
    )]
    Version {
        format: &'static str,
        found: u32,
        oldest: u32,
        newest: u32,
        advice: &'static str,
    },
    #[error("damaged description: {0}")]
    Description(#[source] serde_json::Error),
    #[error("damaged tensor table: {0}")]
    Table(#[source] SafeTensorError),
    #[error("damaged: no tensor {0}")]
    MissingTensor(String),
    #[error("damaged: tensor {name} is {found}, expected {expected}")]
    WrongTensor {
        name: String,
        found: String,
        expected: String,
    },
    #[error("tensor {name}: shape {shape:?} for {values} values")]
    Shape {
        name: String,
        shape: Vec<usize>,
        values: usize,
    },
}

fn versions(oldest: u32, newest: u32) -> String {
    if oldest == newest {
        format!("version {newest}")
    } else {
        format!("versions {oldest} to {newest}")
    }
}

fn what_to_do(found: u32, newest: u32, older_advice: &str) -> &str {
    if found > newest {
        "read it with the newer ics-train that wrote it"
    } else {
        older_advice
    }
}

impl Format {
    /// The error for a file of `found`, a version this trainer does not read.
    pub fn version_error(&self, found: u32) -> Error {
        Error::Version {
            format: self.name,
            found,
            oldest: self.oldest,
            newest: self.version,
            advice: self.older_advice,
        }
    }
}

/// The element types of our tensors.
pub trait Element: Copy {
    const DTYPE: Dtype;
    const SIZE: usize;
    fn extend_le(self, out: &mut Vec<u8>);
    /// From exactly [`Element::SIZE`] little-endian bytes.
    fn from_le(bytes: &[u8]) -> Self;
}

macro_rules! element {
    ($t:ty, $dtype:ident) => {
        impl Element for $t {
            const DTYPE: Dtype = Dtype::$dtype;
            const SIZE: usize = std::mem::size_of::<$t>();
            fn extend_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn from_le(bytes: &[u8]) -> Self {
                <$t>::from_le_bytes(bytes.try_into().expect("SIZE bytes"))
            }
        }
    };
}
element!(f32, F32);
element!(f64, F64);
element!(u8, U8);

/// A tensor to write.
struct Tensor {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Tensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        (&self.bytes).into()
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// The description as written: stamped with the format and version first.
#[derive(Serialize)]
struct Stamped<'a, D> {
    format: &'a str,
    format_version: u32,
    #[serde(flatten)]
    description: &'a D,
}

/// The fields read before anything else, to refuse other formats and versions first.
#[derive(Deserialize)]
struct Stamp {
    format: Option<String>,
    format_version: Option<u32>,
}

/// A tensor file being assembled: tensors by name, then [`Writer::to_bytes`] with the
/// description. The file lists tensors in safetensors' order (by type, then name), so the
/// same contents give the same bytes whatever order they were added in.
#[derive(Default)]
pub struct Writer {
    tensors: Vec<Tensor>,
}

impl Writer {
    pub fn new() -> Writer {
        Writer::default()
    }

    /// Adds tensor `name` of `shape` with `values` in row-major order.
    pub fn add<T: Element>(
        &mut self,
        name: impl Into<String>,
        shape: &[usize],
        values: impl IntoIterator<Item = T>,
    ) -> Result<&mut Writer, Error> {
        let mut bytes = Vec::with_capacity(shape.iter().product::<usize>() * T::SIZE);
        for v in values {
            v.extend_le(&mut bytes);
        }
        let name = name.into();
        let values = bytes.len() / T::SIZE;
        if shape.iter().product::<usize>() != values {
            return Err(Error::Shape {
                name,
                shape: shape.to_vec(),
                values,
            });
        }
        self.tensors.push(Tensor {
            name,
            dtype: T::DTYPE,
            shape: shape.to_vec(),
            bytes,
        });
        Ok(self)
    }

    /// Adds a matrix (its rows in order).
    pub fn matrix<T: Element, S: Data<Elem = T>>(
        &mut self,
        name: impl Into<String>,
        m: &ArrayBase<S, Ix2>,
    ) -> Result<&mut Writer, Error> {
        self.add(name, &[m.nrows(), m.ncols()], m.iter().copied())
    }

    /// The file's bytes, with `description` (a JSON object) stamped as `format`.
    pub fn to_bytes<D: Serialize>(
        &self,
        format: &Format,
        description: &D,
    ) -> Result<Vec<u8>, Error> {
        let json = serde_json::to_string(&Stamped {
            format: format.name,
            format_version: format.version,
            description,
        })
        .map_err(Error::Description)?;
        let metadata = HashMap::from([(format.key.to_string(), json)]);
        safetensors::serialize(
            self.tensors.iter().map(|t| (t.name.as_str(), t)),
            Some(metadata),
        )
        .map_err(Error::Table)
    }
}

/// A tensor file of a known [`Format`], its format and version checked.
pub struct Reader<'a> {
    tensors: SafeTensors<'a>,
    description: String,
    version: u32,
}

impl<'a> Reader<'a> {
    /// Checks `bytes` is a whole file of `format` in a version this trainer reads.
    pub fn parse(bytes: &'a [u8], format: &Format) -> Result<Reader<'a>, Error> {
        let not_ours = Error::NotOurs {
            format: format.name,
        };
        // The header is a JSON object: anything else is another kind of file, whatever its
        // first eight bytes say about the header's length.
        if bytes.len() > 8 && bytes[8] != b'{' {
            return Err(not_ours);
        }
        let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(|e| match e {
            SafeTensorError::HeaderTooSmall
            | SafeTensorError::InvalidHeaderLength
            | SafeTensorError::MetadataIncompleteBuffer => Error::Truncated(e),
            SafeTensorError::HeaderTooLarge => Error::NotOurs {
                format: format.name,
            },
            e => Error::Table(e),
        })?;
        let description = metadata
            .metadata()
            .as_ref()
            .and_then(|m| m.get(format.key))
            .ok_or(not_ours)?
            .clone();
        let stamp: Stamp = serde_json::from_str(&description).map_err(Error::Description)?;
        if stamp.format.as_deref() != Some(format.name) {
            return Err(Error::OtherFormat {
                format: format.name,
                found: stamp.format.unwrap_or_default(),
            });
        }
        let version = stamp.format_version.unwrap_or(0);
        if !(format.oldest..=format.version).contains(&version) {
            return Err(format.version_error(version));
        }
        let tensors = SafeTensors::deserialize(bytes).map_err(Error::Table)?;
        Ok(Reader {
            tensors,
            description,
            version,
        })
    }

    /// The file's format version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The typed description (its `format` and `format_version` fields are the file's).
    pub fn description<D: DeserializeOwned>(&self) -> Result<D, Error> {
        serde_json::from_str(&self.description).map_err(Error::Description)
    }

    /// Tensor `name` of element type `T`: its shape and values.
    pub fn tensor<T: Element>(&self, name: &str) -> Result<(Vec<usize>, Vec<T>), Error> {
        self.get(name, None)
    }

    /// A one-dimensional tensor's values.
    pub fn vector<T: Element>(&self, name: &str) -> Result<Vec<T>, Error> {
        Ok(self.get(name, Some(1))?.1)
    }

    /// A two-dimensional tensor.
    pub fn matrix<T: Element>(&self, name: &str) -> Result<Array2<T>, Error> {
        let (shape, values) = self.get(name, Some(2))?;
        Ok(Array2::from_shape_vec((shape[0], shape[1]), values)
            .expect("safetensors checked the length"))
    }

    fn get<T: Element>(
        &self,
        name: &str,
        rank: Option<usize>,
    ) -> Result<(Vec<usize>, Vec<T>), Error> {
        let t = self
            .tensors
            .tensor(name)
            .map_err(|_| Error::MissingTensor(name.to_string()))?;
        if t.dtype() != T::DTYPE || rank.is_some_and(|r| t.shape().len() != r) {
            return Err(Error::WrongTensor {
                name: name.to_string(),
                found: format!("{} {:?}", t.dtype(), t.shape()),
                expected: match rank {
                    Some(r) => format!("{} with {r} dimensions", T::DTYPE),
                    None => T::DTYPE.to_string(),
                },
            });
        }
        let values = t.data().chunks_exact(T::SIZE).map(T::from_le).collect();
        Ok((t.shape().to_vec(), values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOY: Format = Format {
        name: "ics-train toy",
        key: "ics_train.toy",
        version: 3,
        oldest: 2,
        older_advice: "make it again",
    };

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Toy {
        label: String,
        sizes: Vec<usize>,
    }

    fn toy() -> (Writer, Toy) {
        let mut w = Writer::new();
        w.add("v", &[3], [1.5f32, -2.0, 0.25]).unwrap();
        w.matrix(
            "m",
            &Array2::from_shape_fn((2, 3), |(i, j)| (i * 3 + j) as f64),
        )
        .unwrap();
        w.add("b", &[2, 2], [0u8, 1, 1, 0]).unwrap();
        let d = Toy {
            label: "x".into(),
            sizes: vec![4, 5],
        };
        (w, d)
    }

    fn err(bytes: &[u8]) -> String {
        match Reader::parse(bytes, &TOY) {
            Ok(_) => panic!("read"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn round_trip_with_a_typed_description() {
        let (w, d) = toy();
        let bytes = w.to_bytes(&TOY, &d).unwrap();
        let r = Reader::parse(&bytes, &TOY).unwrap();
        assert_eq!(r.version(), 3);
        assert_eq!(r.description::<Toy>().unwrap(), d);
        assert_eq!(r.vector::<f32>("v").unwrap(), [1.5, -2.0, 0.25]);
        assert_eq!(r.matrix::<f64>("m").unwrap()[[1, 2]], 5.0);
        assert_eq!(r.tensor::<u8>("b").unwrap(), (vec![2, 2], vec![0, 1, 1, 0]));
        // The description is stamped, format first, and readable by any safetensors reader.
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        let json = &meta.metadata().as_ref().unwrap()["ics_train.toy"];
        assert!(
            json.starts_with(r#"{"format":"ics-train toy","format_version":3,"label""#),
            "{json}"
        );
        // The order tensors were added in does not change the bytes.
        let mut other = Writer::new();
        other.add("b", &[2, 2], [0u8, 1, 1, 0]).unwrap();
        other.add("v", &[3], [1.5f32, -2.0, 0.25]).unwrap();
        other
            .matrix(
                "m",
                &Array2::from_shape_fn((2, 3), |(i, j)| (i * 3 + j) as f64),
            )
            .unwrap();
        assert_eq!(other.to_bytes(&TOY, &d).unwrap(), bytes);
    }

    #[test]
    fn wrong_tensors_are_named() {
        let (w, d) = toy();
        let bytes = w.to_bytes(&TOY, &d).unwrap();
        let r = Reader::parse(&bytes, &TOY).unwrap();
        let e = r.vector::<f32>("nope").unwrap_err().to_string();
        assert_eq!(e, "damaged: no tensor nope");
        let e = r.vector::<f64>("v").unwrap_err().to_string();
        assert_eq!(
            e,
            "damaged: tensor v is F32 [3], expected F64 with 1 dimensions"
        );
        let e = r.tensor::<u8>("v").unwrap_err().to_string();
        assert_eq!(e, "damaged: tensor v is F32 [3], expected U8");
        let e = r.matrix::<f32>("v").unwrap_err().to_string();
        assert!(e.contains("expected F32 with 2 dimensions"), "{e}");
        let e = Writer::new()
            .add("w", &[2, 2], [1f32; 3])
            .err()
            .unwrap()
            .to_string();
        assert_eq!(e, "tensor w: shape [2, 2] for 3 values");
    }

    #[test]
    fn other_files_formats_and_versions_are_refused() {
        let (w, d) = toy();
        let bytes = w.to_bytes(&TOY, &d).unwrap();
        for cut in [0, 5, 9, 40, bytes.len() - 1] {
            let e = err(&bytes[..cut]);
            assert!(e.starts_with("truncated"), "cut at {cut}: {e}");
        }
        assert_eq!(err(b"ICSFEAT1 and more"), "not an ics-train toy file");
        let plain = Writer::new().to_bytes(
            &Format {
                key: "other",
                ..TOY
            },
            &d,
        );
        assert_eq!(err(&plain.unwrap()), "not an ics-train toy file");
        let other = w.to_bytes(
            &Format {
                name: "ics-train other",
                ..TOY
            },
            &d,
        );
        assert_eq!(
            err(&other.unwrap()),
            r#"not an ics-train toy file: its format is "ics-train other""#
        );
        let newer = w.to_bytes(&Format { version: 4, ..TOY }, &d).unwrap();
        assert_eq!(
            err(&newer),
            "ics-train toy file format version 4; this ics-train reads versions 2 to 3: read it \
             with the newer ics-train that wrote it"
        );
        let older = w.to_bytes(&Format { version: 1, ..TOY }, &d).unwrap();
        assert_eq!(
            err(&older),
            "ics-train toy file format version 1; this ics-train reads versions 2 to 3: make it \
             again"
        );
        let one = Format { oldest: 3, ..TOY };
        assert!(one
            .version_error(2)
            .to_string()
            .contains("reads version 3: make it again"));
    }
}
