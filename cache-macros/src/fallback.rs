//! What a macro emits when the user made a mistake: the error, and the
//! item exactly as written. The function keeps existing, so its callers,
//! the IDE and the rest of the build see no second, derived error: one
//! mistake gives one message.

use proc_macro2::TokenStream;
use quote::quote;

/// `error` as `compile_error!`s, followed by `item` unchanged.
pub fn emit(item: TokenStream, error: syn::Error) -> TokenStream {
    let error = error.into_compile_error();
    quote!(#error #item)
}
