//! The canonical encoding of key arguments: a serde `Serializer` whose output
//! is the same for equal values on every process, platform and Rust version.
//!
//! Why not `std::hash::Hash`: its output depends on the platform (`usize`),
//! the hasher and the standard library's version. Why not `serde_json`: it
//! writes a `HashMap` in iteration order, which is random per process.
//!
//! Every value is self-delimiting (a tag byte, then fixed-width numbers or a
//! length prefix), so the encoding is injective: two different values never
//! give the same bytes. Numbers are little-endian and fixed width. All
//! integer types share one tag, so widening an argument from `u32` to `u64`
//! keeps its keys. Floats are normalised (`-0.0` is `0.0`, every NaN is one
//! NaN) because they compare equal. Map entries are sorted by their encoded
//! key; the elements of hash-ordered sets (`HashSet`, `IndexSet`, recognised
//! by type name, since serde writes every sequence alike) are sorted by their
//! encoding. Struct and variant names are not encoded, field and variant names
//! are: renaming a type keeps its keys, reordering enum variants too.

use serde::ser::{self, Serialize};

use crate::error::{Error, ErrorKind};

mod tag {
    pub const UNIT: u8 = 0x00;
    pub const FALSE: u8 = 0x01;
    pub const TRUE: u8 = 0x02;
    pub const INT: u8 = 0x10;
    pub const BIG_UINT: u8 = 0x11;
    pub const FLOAT: u8 = 0x20;
    pub const CHAR: u8 = 0x30;
    pub const STR: u8 = 0x31;
    pub const BYTES: u8 = 0x32;
    pub const NONE: u8 = 0x40;
    pub const SOME: u8 = 0x41;
    pub const UNIT_STRUCT: u8 = 0x50;
    pub const UNIT_VARIANT: u8 = 0x51;
    pub const NEWTYPE_VARIANT: u8 = 0x52;
    pub const SEQ: u8 = 0x60;
    pub const TUPLE: u8 = 0x62;
    pub const TUPLE_VARIANT: u8 = 0x63;
    pub const SET: u8 = 0x64;
    pub const MAP: u8 = 0x70;
    pub const STRUCT: u8 = 0x71;
    pub const STRUCT_VARIANT: u8 = 0x72;
}

/// Encodes `value` canonically.
///
/// # Errors
/// A `Serialize` impl that fails (for example a `Mutex` that is poisoned, or a
/// custom impl returning an error) gives an [`ErrorKind::Serialization`] error.
pub fn to_canonical_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    let mut out = Buf::new();
    encode_into(&mut out, value)?;
    Ok(out.into_vec())
}

/// Where encodings are written: the usual key (a few numbers and short
/// strings) fits inline, without a heap allocation.
pub(crate) type Buf = smallvec::SmallVec<[u8; 64]>;

/// Appends the encoding of `value` to `out`.
#[inline]
pub(crate) fn encode_into<T: Serialize + ?Sized>(out: &mut Buf, value: &T) -> Result<(), Error> {
    value.serialize(Encoder {
        out,
        unordered: is_hash_ordered_set::<T>,
    })
}

/// Whether `T` is a set whose iteration order is not a function of its value.
fn is_hash_ordered_set<T: ?Sized>() -> bool {
    let name = std::any::type_name::<T>();
    let outer = name.split('<').next().unwrap_or(name);
    outer.ends_with("HashSet") || outer.ends_with("IndexSet")
}

/// The encoding of an integer (of any type, `u128` up to `i128::MAX`).
#[inline]
pub(crate) fn int_bytes(v: i128) -> [u8; 17] {
    let mut bytes = [tag::INT; 17];
    bytes[1..].copy_from_slice(&v.to_le_bytes());
    bytes
}

#[inline]
fn put_len(out: &mut Buf, len: usize) {
    out.extend_from_slice(&(len as u64).to_le_bytes());
}

#[inline]
fn put_str(out: &mut Buf, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

impl ser::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error::new(
            ErrorKind::Serialization,
            format!("a key argument failed to serialize: {msg}"),
        )
    }
}

struct Encoder<'a> {
    out: &'a mut Buf,
    /// Whether the value being encoded is a hash-ordered set, whose
    /// elements are to be sorted: asked only of sequences (reading a type's
    /// name costs more than encoding a number).
    unordered: fn() -> bool,
}

impl<'a> Encoder<'a> {
    #[inline]
    fn int(self, v: i128) -> Result<(), Error> {
        self.out.extend_from_slice(&int_bytes(v));
        Ok(())
    }

    fn float(self, v: f64) -> Result<(), Error> {
        let v = if v == 0.0 {
            0.0
        } else if v.is_nan() {
            f64::NAN
        } else {
            v
        };
        self.out.push(tag::FLOAT);
        self.out.extend_from_slice(&v.to_bits().to_le_bytes());
        Ok(())
    }

    fn header(self, tag: u8, variant: Option<&str>) -> Compound<'a> {
        self.out.push(tag);
        if let Some(variant) = variant {
            put_str(self.out, variant);
        }
        let count_at = self.out.len();
        put_len(self.out, 0);
        Compound {
            out: self.out,
            count_at,
            count: 0,
            sorted: None,
            pending_key: None,
        }
    }
}

/// A sequence, tuple, map or struct being written: counts its elements and
/// patches the count in at the end. Sorted collections collect their elements
/// (or entries) apart and write them in order at the end.
struct Compound<'a> {
    out: &'a mut Buf,
    count_at: usize,
    count: u64,
    sorted: Option<Vec<Buf>>,
    pending_key: Option<Buf>,
}

impl Compound<'_> {
    fn sorted(mut self) -> Self {
        self.sorted = Some(Vec::new());
        self
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.count += 1;
        match &mut self.sorted {
            Some(items) => {
                let mut item = Buf::new();
                encode_into(&mut item, value)?;
                items.push(item);
                Ok(())
            }
            None => encode_into(self.out, value),
        }
    }

    fn field<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) -> Result<(), Error> {
        self.count += 1;
        put_str(self.out, name);
        encode_into(self.out, value)
    }

    fn finish(self) -> Result<(), Error> {
        if let Some(mut items) = self.sorted {
            items.sort_unstable();
            for item in &items {
                self.out.extend_from_slice(item);
            }
        }
        self.out[self.count_at..self.count_at + 8].copy_from_slice(&self.count.to_le_bytes());
        Ok(())
    }
}

impl<'a> ser::Serializer for Encoder<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    #[inline]
    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.out.push(if v { tag::TRUE } else { tag::FALSE });
        Ok(())
    }
    #[inline]
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.int(v.into())
    }
    #[inline]
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.int(v.into())
    }
    #[inline]
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.int(v.into())
    }
    #[inline]
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.int(v.into())
    }
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        self.int(v)
    }
    #[inline]
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.int(v.into())
    }
    #[inline]
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.int(v.into())
    }
    #[inline]
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.int(v.into())
    }
    #[inline]
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.int(v.into())
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        match i128::try_from(v) {
            Ok(v) => self.int(v),
            Err(_) => {
                self.out.push(tag::BIG_UINT);
                self.out.extend_from_slice(&v.to_le_bytes());
                Ok(())
            }
        }
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.float(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.float(v)
    }
    #[inline]
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.out.push(tag::CHAR);
        self.out.extend_from_slice(&u32::from(v).to_le_bytes());
        Ok(())
    }
    #[inline]
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.out.push(tag::STR);
        put_str(self.out, v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        self.out.push(tag::BYTES);
        put_len(self.out, v.len());
        self.out.extend_from_slice(v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.out.push(tag::NONE);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        self.out.push(tag::SOME);
        encode_into(self.out, value)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.out.push(tag::UNIT);
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.out.push(tag::UNIT_STRUCT);
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.out.push(tag::UNIT_VARIANT);
        put_str(self.out, variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        encode_into(self.out, value)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.out.push(tag::NEWTYPE_VARIANT);
        put_str(self.out, variant);
        encode_into(self.out, value)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a>, Error> {
        Ok(if (self.unordered)() {
            self.header(tag::SET, None).sorted()
        } else {
            self.header(tag::SEQ, None)
        })
    }
    fn serialize_tuple(self, _len: usize) -> Result<Compound<'a>, Error> {
        Ok(self.header(tag::TUPLE, None))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>, Error> {
        Ok(self.header(tag::TUPLE, None))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>, Error> {
        Ok(self.header(tag::TUPLE_VARIANT, Some(variant)))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'a>, Error> {
        Ok(self.header(tag::MAP, None).sorted())
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Compound<'a>, Error> {
        Ok(self.header(tag::STRUCT, None))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>, Error> {
        Ok(self.header(tag::STRUCT_VARIANT, Some(variant)))
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        let mut entry = Buf::new();
        encode_into(&mut entry, key)?;
        self.pending_key = Some(entry);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let mut entry = self.pending_key.take().ok_or_else(|| {
            Error::new(
                ErrorKind::Serialization,
                "a map value was serialized before its key",
            )
        })?;
        encode_into(&mut entry, value)?;
        self.count += 1;
        self.sorted.get_or_insert_with(Vec::new).push(entry);
        Ok(())
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.field(name, value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.field(name, value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap, HashSet};

    fn enc<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
        to_canonical_bytes(v).unwrap()
    }

    /// Golden: the documented layout, byte for byte.
    #[test]
    fn golden_bytes() {
        let mut want = vec![tag::TUPLE];
        want.extend_from_slice(&2u64.to_le_bytes());
        want.push(tag::INT);
        want.extend_from_slice(&42i128.to_le_bytes());
        want.push(tag::STR);
        want.extend_from_slice(&5u64.to_le_bytes());
        want.extend_from_slice(b"alice");
        assert_eq!(enc(&(42u64, "alice")), want);
        assert_eq!(
            enc(&Some(true)),
            vec![tag::SOME, tag::TRUE],
            "tags are fixed"
        );
    }

    #[test]
    fn hash_map_order_does_not_matter() {
        let pairs: Vec<(String, u32)> = (0..200).map(|i| (format!("k{i}"), i)).collect();
        let a: HashMap<_, _> = pairs.iter().cloned().collect();
        let b: HashMap<_, _> = pairs.iter().rev().cloned().collect();
        let c: BTreeMap<_, _> = pairs.iter().cloned().collect();
        assert_eq!(enc(&a), enc(&b));
        // A map is a map, whatever its Rust type.
        assert_eq!(enc(&a), enc(&c));
    }

    #[test]
    fn hash_set_order_does_not_matter_but_vec_order_does() {
        let a: HashSet<u64> = (0..100).collect();
        let b: HashSet<u64> = (0..100).rev().collect();
        assert_eq!(enc(&a), enc(&b));
        assert_ne!(enc(&vec![1u8, 2]), enc(&vec![2u8, 1]));
    }

    #[test]
    fn strings_cannot_forge_boundaries() {
        assert_ne!(enc(&("ab", "c")), enc(&("a", "bc")));
        assert_ne!(enc(&("a:b",)), enc(&("a", "b")));
        assert_ne!(enc(&vec!["a", ""]), enc(&vec!["a"]));
    }

    #[test]
    fn integer_width_does_not_matter_sign_does() {
        assert_eq!(enc(&5u32), enc(&5u64));
        assert_eq!(enc(&5u8), enc(&5i128));
        assert_ne!(enc(&-1i64), enc(&u64::MAX));
        assert_ne!(enc(&u128::MAX), enc(&-1i128));
    }

    #[test]
    fn floats_that_compare_equal_encode_equal() {
        assert_eq!(enc(&0.0f64), enc(&-0.0f64));
        assert_eq!(enc(&1.5f32), enc(&1.5f64));
        assert_eq!(enc(&f64::NAN), enc(&-f64::NAN));
    }

    #[test]
    fn option_and_unit_are_distinct() {
        assert_ne!(enc(&None::<u8>), enc(&Some(())));
        assert_ne!(enc(&Some(0u8)), enc(&0u8));
    }
}
