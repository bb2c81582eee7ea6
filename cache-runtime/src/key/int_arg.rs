//! Key arguments that are integers (`u64` ids above all), recognised
//! without encoding them: a serde `Serializer` that accepts an integer (or a
//! newtype around one) and refuses anything else at its first call. For an
//! integer type it compiles to a move; for other types it stops at once.
//! (Like the canonical encoder, it says it is human-readable, the default:
//! a type that serializes differently for compact formats is probed as the
//! encoder sees it.) A lone integer argument then keys the local tier as
//! itself (see
//! `cached_fn::KeyArgs`), and its canonical bytes are written only on a
//! local miss.

use serde::ser::{self, Impossible, Serialize};

/// The value of `value` if it serializes as one integer that the canonical
/// encoding writes as `INT` (every integer but a `u128` above `i128::MAX`).
#[inline(always)]
pub(crate) fn int_of<T: Serialize + ?Sized>(value: &T) -> Option<i128> {
    value.serialize(Probe).ok()
}

/// Not an integer.
#[derive(Debug)]
pub(crate) struct NotInt;

impl std::fmt::Display for NotInt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not an integer")
    }
}

impl std::error::Error for NotInt {}

impl ser::Error for NotInt {
    fn custom<T: std::fmt::Display>(_msg: T) -> Self {
        NotInt
    }
}

struct Probe;

type R = Result<i128, NotInt>;

macro_rules! int {
    ($($f:ident: $t:ty),*) => {$(
        #[inline(always)]
        fn $f(self, v: $t) -> R {
            Ok(v.into())
        }
    )*};
}

macro_rules! not {
    ($($f:ident($($a:ident: $t:ty),*)),*) => {$(
        #[inline(always)]
        fn $f(self, $(_: $t),*) -> R {
            Err(NotInt)
        }
    )*};
}

impl ser::Serializer for Probe {
    type Ok = i128;
    type Error = NotInt;
    type SerializeSeq = Impossible<i128, NotInt>;
    type SerializeTuple = Impossible<i128, NotInt>;
    type SerializeTupleStruct = Impossible<i128, NotInt>;
    type SerializeTupleVariant = Impossible<i128, NotInt>;
    type SerializeMap = Impossible<i128, NotInt>;
    type SerializeStruct = Impossible<i128, NotInt>;
    type SerializeStructVariant = Impossible<i128, NotInt>;

    int!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
         serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
         serialize_u64: u64);

    #[inline(always)]
    fn serialize_u128(self, v: u128) -> R {
        i128::try_from(v).map_err(|_| NotInt)
    }

    not!(serialize_bool(v: bool), serialize_f32(v: f32), serialize_f64(v: f64),
         serialize_char(v: char), serialize_str(v: &str), serialize_bytes(v: &[u8]),
         serialize_none(), serialize_unit(), serialize_unit_struct(n: &'static str),
         serialize_unit_variant(n: &'static str, i: u32, v: &'static str));

    #[inline(always)]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> R {
        // The canonical encoding writes a newtype as its content.
        value.serialize(self)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> R {
        Err(NotInt)
    }
    // Refused without formatting the value first (the default would).
    fn collect_str<T: std::fmt::Display + ?Sized>(self, _: &T) -> R {
        Err(NotInt)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> R {
        Err(NotInt)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotInt> {
        Err(NotInt)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotInt> {
        Err(NotInt)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NotInt> {
        Err(NotInt)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotInt> {
        Err(NotInt)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotInt> {
        Err(NotInt)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, NotInt> {
        Err(NotInt)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotInt> {
        Err(NotInt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::canonical::{int_bytes, to_canonical_bytes};

    #[derive(serde::Serialize)]
    struct Id(u32);

    #[derive(serde::Serialize)]
    struct Pair(u8, u8);

    fn same<T: Serialize>(v: T) {
        let i = int_of(&v).expect("an integer");
        assert_eq!(int_bytes(i).to_vec(), to_canonical_bytes(&v).unwrap());
    }

    #[test]
    fn integers_are_recognised_and_encode_as_the_canonical_encoding_does() {
        same(0u8);
        same(u16::MAX);
        same(-1i32);
        same(i64::MIN);
        same(u64::MAX);
        same(usize::MAX);
        same(isize::MIN);
        same(i128::MIN);
        same(i128::MAX as u128);
        same(Id(7));
        // References serialize as what they point to.
        assert_eq!(int_of(&&&5u64), Some(5));
    }

    #[test]
    fn anything_else_is_not() {
        assert_eq!(int_of(&u128::MAX), None);
        assert_eq!(int_of("7"), None);
        assert_eq!(int_of(&'7'), None);
        assert_eq!(int_of(&7.0f64), None);
        assert_eq!(int_of(&true), None);
        assert_eq!(int_of(&Some(7u8)), None);
        assert_eq!(int_of(&()), None);
        assert_eq!(int_of(&[7u8]), None);
        assert_eq!(int_of(&(7u8,)), None);
        assert_eq!(int_of(&Pair(1, 2)), None);
    }
}
