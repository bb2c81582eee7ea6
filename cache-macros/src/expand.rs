//! Code generation for `#[cached]`.
//!
//! For `fn load_user(id: u64) -> Result<User, E>` it emits:
//!
//! - `load_user`, same signature: builds the key, then calls the runtime's
//!   driver (`call_sync` or `call_async`) with a closure that calls
//!   `load_user_uncached`;
//! - `load_user_uncached`: the user's body, emitted once, so that type
//!   errors point at the user's code and appear once;
//! - the companions `load_user_key`, `load_user_remove`, `load_user_prime`
//!   and `load_user_refresh`.
//!
//! All items are siblings: at module level for a free function, in the same
//! `impl` (or trait) for an associated one, where they are called through
//! `Self::`. Generated code names only `#krate::__private` and `::core`.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::visit_mut::VisitMut;
use syn::{parse_quote, Attribute, FnArg, GenericParam, Ident, Pat, PatIdent, PatType, Signature};

use crate::ast::{span_of, Binding, Function, Input, Output, ShapeKind};
use crate::attr::{self, Options, DEFAULT_NAMESPACE};
use crate::ctxt::Ctxt;
use crate::fallback;
use crate::valid;

/// Expands `#[cached(args)] item`.
pub fn cached(args: TokenStream, item: TokenStream) -> TokenStream {
    let input: Input = match syn::parse2(item.clone()) {
        Ok(input) => input,
        Err(e) => return fallback::emit(item, e),
    };
    let mut cx = Ctxt::default();
    let options = attr::parse(args, &mut cx);
    let f = Function::from_input(&input);
    valid::check(&f, &options, &mut cx);
    if let Err(e) = cx.check() {
        return fallback::emit(item, e);
    }
    if options.handler.is_some() {
        return crate::handler::expand(&f, &options, item);
    }
    Expander::new(&f, &options).expand()
}

pub(crate) struct Expander<'a> {
    f: &'a Function<'a>,
    pub(crate) options: &'a Options,
    /// `#krate::__private`.
    private: TokenStream,
    /// Whether the function is associated, so siblings are `Self::` items.
    pub(crate) associated: bool,
}

impl<'a> Expander<'a> {
    pub(crate) fn new(f: &'a Function<'a>, options: &'a Options) -> Self {
        let krate = options.krate();
        Expander {
            f,
            options,
            private: quote!(#krate::__private),
            associated: options.in_impl || f.surely_associated(),
        }
    }

    fn expand(&self) -> TokenStream {
        let cached = self.cached_fn();
        let uncached = self.uncached_fn();
        let key = self.key_fn();
        let remove = self.remove_fn();
        let prime = self.prime_fn();
        let refresh = self.refresh_fn();
        quote! { #cached #uncached #key #remove #prime #refresh }
    }

    fn is_async(&self) -> bool {
        self.f.input.sig.asyncness.is_some()
    }

    fn name(&self) -> &Ident {
        self.f.name()
    }

    fn ret(&self) -> &syn::Type {
        match self.f.output {
            Output::Type(ty) => ty,
            Output::Unit(_) => unreachable!("valid.rs rejects functions returning ()"),
        }
    }

    /// The function itself: same signature, a cached body.
    fn cached_fn(&self) -> TokenStream {
        let attrs = self.f.input.attrs.iter().map(expect_to_allow);
        let vis = &self.f.input.vis;
        let sig = self.signature(self.name().clone());
        let body = self.driven_body("Cached");
        quote! {
            #(#attrs)*
            #vis #sig {
                #body
            }
        }
    }

    /// `name_uncached`: the user's function under another name, body and all.
    pub(crate) fn uncached_fn(&self) -> TokenStream {
        let input = self.f.input;
        let attrs = input.attrs.iter().filter(|a| is_cfg(a) || is_lint(a));
        let vis = &input.vis;
        let mut sig = input.sig.clone();
        sig.ident = self.sibling_ident("uncached");
        let body = &input.body;
        let doc = format!(
            "Runs the body of `{}` without the cache (`#[cached]` companion).",
            self.name()
        );
        quote! {
            #(#attrs)*
            #[doc = #doc]
            #[allow(dead_code)]
            #vis #sig #body
        }
    }

    /// `name_key(args) -> Result<EntryKey>`.
    fn key_fn(&self) -> TokenStream {
        let p = &self.private;
        let mut sig = self.signature(self.sibling_ident("key"));
        sig.asyncness = None;
        sig.output = parse_quote!(-> #p::Result<#p::EntryKey>);
        let spec = self.spec();
        let key = self.key();
        let doc = format!(
            "The cache key of a call of `{}` with these arguments (`#[cached]` companion).\n\n\
             # Errors\nWhen an argument fails to serialize.",
            self.name()
        );
        self.companion(&doc, &sig, quote! { #spec (#key).finish() })
    }

    /// `name_remove(args) -> Result<bool>`: removes one entry.
    fn remove_fn(&self) -> TokenStream {
        let p = &self.private;
        let mut sig = self.signature(self.sibling_ident("remove"));
        sig.output = parse_quote!(-> #p::Result<bool>);
        let key = self.call_sibling("key");
        let body = if self.is_async() {
            quote!(#p::remove(#key).await)
        } else {
            quote!(#p::remove_blocking(#key))
        };
        let doc = format!(
            "Removes the cached entry of `{}` for these arguments; returns whether a value \
             was there (`#[cached]` companion).\n\n# Errors\nA backend failure.",
            self.name()
        );
        self.companion(&doc, &sig, body)
    }

    /// `name_prime(args, value: &Stored) -> Result<()>`: stores a value.
    fn prime_fn(&self) -> TokenStream {
        let p = &self.private;
        let mut sig = self.signature(self.sibling_ident("prime"));
        let stored = self.stored_type();
        let value = self.value_ident();
        sig.inputs.push(parse_quote!(#value: &#stored));
        sig.output = parse_quote!(-> #p::Result<()>);
        let spec = self.spec();
        let key = self.key();
        // Never called; its type ties the shape's `_` (the `E` of a
        // `Result`) to the return type.
        let ret = self.ret();
        let never = if self.is_async() {
            quote!(|| ::core::future::pending::<#ret>())
        } else {
            quote!(|| -> #ret { ::core::unreachable!("a primed call computes nothing") })
        };
        let call = self.driver_call(
            quote!(#p::Mode::Prime(#value, &mut __memocache_primed)),
            quote!(::core::option::Option::None),
            never,
        );
        let doc = format!(
            "Stores `{value}` as the cached result of `{}` for these arguments \
             (`#[cached]` companion).\n\n# Errors\nA value that fails to encode, or a backend \
             failure.",
            self.name()
        );
        let front = (!self.is_async()).then(|| self.front_static());
        let body = quote! {
            #spec
            #front
            #[allow(clippy::needless_borrow, clippy::needless_borrows_for_generic_args)]
            let __memocache_key = #key;
            let mut __memocache_primed = ::core::result::Result::Ok(());
            let _ = #call;
            __memocache_primed
        };
        self.companion(&doc, &sig, body)
    }

    /// `name_refresh(args) -> Ret`: recomputes and stores.
    fn refresh_fn(&self) -> TokenStream {
        let sig = self.signature(self.sibling_ident("refresh"));
        let body = self.driven_body("Refresh");
        let doc = format!(
            "Runs `{}` without looking in the cache, stores the outcome if it is cacheable, \
             and returns it (`#[cached]` companion).",
            self.name()
        );
        self.companion(&doc, &sig, body)
    }

    /// A generated sibling with `doc`, the user's `cfg`s and lint
    /// exceptions for code the user did not write.
    pub(crate) fn companion(&self, doc: &str, sig: &Signature, body: TokenStream) -> TokenStream {
        let cfgs = self.f.input.attrs.iter().filter(|a| is_cfg(a));
        let vis = &self.f.input.vis;
        quote! {
            #(#cfgs)*
            #[doc = #doc]
            #[allow(
                dead_code,
                unused_variables,
                clippy::too_many_arguments,
                clippy::extra_unused_lifetimes,
                clippy::extra_unused_type_parameters,
                clippy::needless_lifetimes,
                clippy::used_underscore_binding
            )]
            #vis #sig {
                #body
            }
        }
    }

    /// The body of the cached function (`mode = "Cached"`) or of its
    /// `_refresh` companion (`"Refresh"`): spec, key, then the driver.
    fn driven_body(&self, mode: &str) -> TokenStream {
        let p = &self.private;
        let spec = self.spec();
        let key = self.key();
        let cached = mode == "Cached";
        let mode = Ident::new(mode, Span::call_site());
        let (store_if_let, store_if) = self.store_if();
        let compute = self.call_sibling("uncached");
        let mut call =
            self.driver_call(quote!(#p::Mode::#mode), store_if, quote!(move || #compute));
        let ret_span = span_of(self.ret());
        let shape = {
            let p = respan(self.private.clone(), ret_span);
            respan(self.shape(&p), ret_span)
        };
        if cached && self.is_async() {
            // A local hit before the driver's future is built: building
            // and polling it costs more than the hit itself. (The sync
            // driver looks first itself.)
            let p = respan(self.private.clone(), ret_span);
            call = quote_spanned! {ret_span=>
                match #p::cached_locally::<#shape>(&__MEMOCACHE_SPEC, &__MEMOCACHE_FRONT, &__memocache_key) {
                    ::core::option::Option::Some(__memocache_out) => __memocache_out,
                    ::core::option::Option::None => { #call }
                }
            };
        }
        let front = (cached || !self.is_async()).then(|| self.front_static());
        let keyed = quote! {
            #[allow(clippy::needless_borrow, clippy::needless_borrows_for_generic_args)]
            let __memocache_key = #key;
            #store_if_let
            #call
        };
        // The lone integer's hit first. In a sync function the rest of the
        // call is a closure, so that the hit's value is cloned straight into
        // the return value (through an `Option`, a `String` was copied once
        // more: 31 against 18 ns). An async function's rest awaits: its hit
        // is an `Option` in tail position, for small outputs only.
        let body = match cached.then(|| self.lone_int_probe(ret_span)).flatten() {
            Some(probe) if !self.is_async() => {
                let p = respan(self.private.clone(), ret_span);
                quote_spanned! {ret_span=>
                    #p::cached_locally_int_or::<#shape>(
                        &__MEMOCACHE_SPEC,
                        &__MEMOCACHE_FRONT,
                        #probe,
                        move || { #keyed },
                    )
                }
            }
            Some(probe) => {
                let p = respan(self.private.clone(), ret_span);
                quote_spanned! {ret_span=>
                    match #p::cached_locally_int::<#shape>(
                        &__MEMOCACHE_SPEC,
                        &__MEMOCACHE_FRONT,
                        #probe,
                    ) {
                        ::core::option::Option::Some(__memocache_out) => __memocache_out,
                        ::core::option::Option::None => { #keyed }
                    }
                }
            }
            None => keyed,
        };
        quote! {
            #spec
            #front
            #body
        }
    }

    /// For a function whose key is one argument, by name: that argument as
    /// an integer (an `Option<i128>`), with which the function asks this
    /// thread's front before the call's key arguments are built (they cost
    /// a third of such a hit). Whether
    /// it is an integer is asked through serde, by a method that resolves
    /// to a `None` without `Serialize` (autoref), so that a key argument
    /// that is not `Serialize` is reported once, at `.arg(..)`.
    fn lone_int_probe(&self, ret_span: Span) -> Option<TokenStream> {
        let p = &self.private;
        if self.options.key.is_some()
            || self.associated
            || !self.f.input.sig.generics.params.is_empty()
        {
            return None;
        }
        let skipped = |name: &Ident| self.skipped(name);
        let mut keyed = self.f.args.iter().filter(|arg| match &arg.binding {
            Binding::Name(p) => !skipped(&p.ident),
            Binding::Pattern(names) => names.iter().any(|n| !skipped(n)),
        });
        let (Some(arg), None) = (keyed.next(), keyed.next()) else {
            return None;
        };
        let Binding::Name(name) = &arg.binding else {
            return None;
        };
        let name = &name.ident;
        // At the return type's span, as the drivers: a return type that is
        // not storable fails the same bound there, and rustc reports the
        // error once.
        let p = respan(p.clone(), ret_span);
        Some(quote_spanned! {ret_span=>
            {
                #[allow(unused_imports)]
                use #p::{LoneIntOfAny as _, LoneIntOfSerialize as _};
                #[allow(clippy::needless_borrow, clippy::needless_borrows_for_generic_args)]
                (&#p::LoneProbe(&#name)).lone_int()
            }
        })
    }

    /// The call of the runtime's driver, `call_sync` or `call_async`.
    ///
    /// Its path carries the return type's span: a return type that is not
    /// `Clone + Serialize + DeserializeOwned` fails the driver's `Shape`
    /// bound, and the error lands on that type. The cached function and its
    /// `_refresh` and `_prime` companions make the very same call, so rustc
    /// reports that error once, not once per function.
    fn driver_call(
        &self,
        mode: TokenStream,
        store_if: TokenStream,
        compute: TokenStream,
    ) -> TokenStream {
        let ret_span = span_of(self.ret());
        let p = respan(self.private.clone(), ret_span);
        let shape = respan(self.shape(&p), ret_span);
        let mode = respan(mode, ret_span);
        if self.is_async() {
            quote_spanned! {ret_span=>
                #p::call_async::<#shape, _, _>(&__MEMOCACHE_SPEC, #mode, __memocache_key, #store_if, #compute).await
            }
        } else {
            quote_spanned! {ret_span=>
                #p::call_sync::<#shape, _>(
                    &__MEMOCACHE_SPEC,
                    &__MEMOCACHE_FRONT,
                    #mode,
                    __memocache_key,
                    #store_if,
                    #compute,
                )
            }
        }
    }

    /// The `thread_local!` of the function's per-thread fronts, declared in
    /// the bodies that use it (a sync driver's, and an async function's
    /// local lookup before its driver), once per body: the drivers reach it
    /// through this `static`, so its access compiles to an offset from the
    /// thread pointer (see `Spec`).
    fn front_static(&self) -> TokenStream {
        let p = &self.private;
        quote! {
            ::std::thread_local! {
                static __MEMOCACHE_FRONT: #p::FnFront = const { #p::FnFront::new() };
            }
        }
    }

    /// The `static` spec of the function.
    pub(crate) fn spec(&self) -> TokenStream {
        let p = &self.private;
        let namespace = self
            .options
            .namespace
            .as_ref()
            .map_or_else(|| DEFAULT_NAMESPACE.to_owned(), |lit| lit.value());
        let name = self.name().unraw().to_string();
        let version = self.options.version.map(|v| quote!(.version(#v)));
        let ttl = self.options.ttl_ms.map(|ms| quote!(.ttl_ms(#ms)));
        let single_flight = self
            .options
            .single_flight
            .map(|on| quote!(.single_flight(#on)));
        let lock = self.options.lock_ms.map(|ms| quote!(.lock_ms(#ms)));
        let early_refresh = self
            .options
            .early_refresh
            .map(|beta| quote!(.early_refresh(#beta)));
        let local_ttl = self
            .options
            .local_ttl_ms
            .map(|ms| quote!(.local_ttl_ms(#ms)));
        quote! {
            static __MEMOCACHE_SPEC: #p::Spec = #p::Spec::new(
                #namespace,
                ::core::concat!(::core::module_path!(), "::", #name),
            ) #version #ttl #single_flight #lock #early_refresh #local_ttl;
        }
    }

    /// The expression of the call's key arguments (a `KeyArgs`, unfinished:
    /// the drivers finish it on a local miss only): one
    /// `.arg(..)` each (spanned at the argument, so a missing `Serialize`
    /// points there), then the names of the type parameters and of `Self`,
    /// so that instantiations and impls never share entries.
    fn key(&self) -> TokenStream {
        let destructure = self.f.args.iter().filter_map(|arg| match &arg.binding {
            Binding::Pattern(names) if !names.is_empty() => {
                let pat = by_reference(&arg.pat_type.pat);
                let forward = &arg.forward;
                Some(quote!(#[allow(unused_variables)] let #pat = &#forward;))
            }
            _ => None,
        });
        let parts = match &self.options.key {
            Some(expr) => vec![quote_spanned!(span_of(expr)=> .arg(&(#expr)))],
            None => self.derived_key_parts(),
        };
        let generics = self
            .f
            .input
            .sig
            .generics
            .params
            .iter()
            .filter_map(|param| match param {
                GenericParam::Type(t) => {
                    let t = &t.ident;
                    Some(quote!(.arg(::core::any::type_name::<#t>())))
                }
                GenericParam::Const(c) => {
                    let c = &c.ident;
                    Some(quote!(.arg(&#c)))
                }
                GenericParam::Lifetime(_) => None,
            });
        let self_type = self
            .associated
            .then(|| quote!(.arg(::core::any::type_name::<Self>())));
        quote! {{
            #(#destructure)*
            __MEMOCACHE_SPEC.args() #(#parts)* #(#generics)* #self_type
        }}
    }

    /// Whether `name` is left out of the key (`skip`).
    fn skipped(&self, name: &Ident) -> bool {
        self.options
            .skip
            .as_ref()
            .is_some_and(|(_, names)| names.iter().any(|s| s == name))
    }

    fn derived_key_parts(&self) -> Vec<TokenStream> {
        let skipped = |name: &Ident| self.skipped(name);
        let mut parts = Vec::new();
        for arg in &self.f.args {
            match &arg.binding {
                Binding::Name(p) if !skipped(&p.ident) => {
                    let name = &p.ident;
                    let span = span_of(&arg.pat_type.ty);
                    parts.push(quote_spanned!(span=> .arg(&#name)));
                }
                Binding::Pattern(names) => {
                    for name in names.iter().filter(|n| !skipped(n)) {
                        parts.push(quote_spanned!(name.span()=> .arg(#name)));
                    }
                }
                Binding::Name(_) => {}
            }
        }
        parts
    }

    /// The `Shape` of the return type, by its syntax.
    fn shape(&self, p: &TokenStream) -> TokenStream {
        let ret = self.ret();
        match self.f.shape() {
            // `E` is spelled out when written, so that every diagnostic
            // names the same type `OkOf<T, E>` (and rustc merges them).
            ShapeKind::Result(ok, err) if self.options.cache_err.is_none() => {
                let err = err.map_or_else(|| quote!(_), ToTokens::to_token_stream);
                quote!(#p::OkOf<#ok, #err>)
            }
            ShapeKind::Option(some) if self.options.cache_none.is_none() => {
                quote!(#p::SomeOf<#some>)
            }
            _ => quote!(#p::Plain<#ret>),
        }
    }

    /// What is stored, as a type (the `_prime` companion takes one).
    fn stored_type(&self) -> TokenStream {
        match self.f.shape() {
            ShapeKind::Result(ok, _) if self.options.cache_err.is_none() => quote!(#ok),
            ShapeKind::Option(some) if self.options.cache_none.is_none() => quote!(#some),
            _ => self.ret().to_token_stream(),
        }
    }

    /// The `store_if` predicate: a typed binding (spanned at the user's
    /// path, so a wrong signature is reported there) and its use.
    fn store_if(&self) -> (TokenStream, TokenStream) {
        let Some(path) = &self.options.store_if else {
            return (quote!(), quote!(::core::option::Option::None));
        };
        let ret = self.ret();
        let binding = quote_spanned! {span_of(path)=>
            let __memocache_store_if: ::core::option::Option<fn(&#ret) -> bool> =
                ::core::option::Option::Some(#path);
        };
        (binding, quote!(__memocache_store_if))
    }

    /// The name of the `_prime` companion's value argument, clear of the
    /// function's own argument names.
    fn value_ident(&self) -> Ident {
        if self.f.bound_names().any(|n| n == "value") {
            format_ident!("__memocache_value")
        } else {
            format_ident!("value")
        }
    }

    pub(crate) fn sibling_ident(&self, suffix: &str) -> Ident {
        format_ident!("{}_{}", self.name(), suffix, span = self.name().span())
    }

    /// A call of the sibling `name_suffix` with this function's arguments.
    pub(crate) fn call_sibling(&self, suffix: &str) -> TokenStream {
        let prefix = self.associated.then(|| quote!(Self::));
        let ident = self.sibling_ident(suffix);
        let params: Vec<&Ident> = self
            .f
            .input
            .sig
            .generics
            .params
            .iter()
            .filter_map(|param| match param {
                GenericParam::Type(t) => Some(&t.ident),
                GenericParam::Const(c) => Some(&c.ident),
                GenericParam::Lifetime(_) => None,
            })
            .collect();
        let turbofish = (!params.is_empty()).then(|| quote!(::<#(#params),*>));
        let receiver = self.f.receiver.map(|r| {
            let token = &r.self_token;
            quote!(#token,)
        });
        let args = self.f.args.iter().map(|arg| &arg.forward);
        quote!(#prefix #ident #turbofish(#receiver #(#args),*))
    }

    /// The function's signature renamed to `ident`, with every argument a
    /// plain, immutable name: patterns become generated names, and `mut`
    /// goes (the body, which might mutate, lives in `_uncached`).
    pub(crate) fn signature(&self, ident: Ident) -> Signature {
        let mut sig = self.f.input.sig.clone();
        sig.ident = ident;
        let mut args = self.f.args.iter();
        for input in &mut sig.inputs {
            match input {
                FnArg::Receiver(r) => {
                    if r.reference.is_none() {
                        r.mutability = None;
                    }
                }
                FnArg::Typed(pat_type) => {
                    let Some(arg) = args.next() else { continue };
                    *pat_type = PatType {
                        pat: Box::new(Pat::Ident(PatIdent {
                            attrs: Vec::new(),
                            by_ref: None,
                            mutability: None,
                            ident: arg.forward.clone(),
                            subpat: None,
                        })),
                        ..pat_type.clone()
                    };
                }
            }
        }
        sig
    }
}

/// `#[expect(..)]` becomes `#[allow(..)]` on the wrapper: the expected lint
/// fires in the body, which lives in `_uncached` (which keeps the `expect`).
fn expect_to_allow(attr: &Attribute) -> TokenStream {
    if attr.path().is_ident("expect") {
        let mut attr = attr.clone();
        if let syn::Meta::List(list) = &mut attr.meta {
            list.path = parse_quote!(allow);
        }
        attr.into_token_stream()
    } else {
        attr.into_token_stream()
    }
}

fn is_cfg(attr: &Attribute) -> bool {
    attr.path().is_ident("cfg") || attr.path().is_ident("cfg_attr")
}

fn is_lint(attr: &Attribute) -> bool {
    ["allow", "warn", "deny", "forbid", "expect"]
        .iter()
        .any(|lint| attr.path().is_ident(lint))
}

/// `pat` with every binding plain (no `ref`, no `mut`), for matching it
/// against a reference: default binding modes then bind references.
pub(crate) fn by_reference(pat: &Pat) -> Pat {
    struct Plain;
    impl VisitMut for Plain {
        fn visit_pat_ident_mut(&mut self, p: &mut PatIdent) {
            p.by_ref = None;
            p.mutability = None;
            syn::visit_mut::visit_pat_ident_mut(self, p);
        }
    }
    let mut pat = pat.clone();
    Plain.visit_pat_mut(&mut pat);
    pat
}

/// `tokens` with every span set to `span`.
pub fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut t| {
            if let proc_macro2::TokenTree::Group(g) = &t {
                let mut group = proc_macro2::Group::new(g.delimiter(), respan(g.stream(), span));
                group.set_span(span);
                t = group.into();
            } else {
                t.set_span(span);
            }
            t
        })
        .collect()
}
