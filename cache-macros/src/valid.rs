//! The rules a `#[cached]` function must follow, one small function each,
//! with the reason for the rule. Every rule runs, so a build reports every
//! broken rule at once.

use syn::visit::Visit;
use syn::{Type, TypeImplTrait};

use crate::ast::{span_of, Function, Output, ShapeKind};
use crate::attr::Options;
use crate::ctxt::Ctxt;

/// Checks `f` against every rule.
pub fn check(f: &Function, options: &Options, cx: &mut Ctxt) {
    has_body(f, cx);
    not_const(f, cx);
    not_unsafe(f, cx);
    not_extern(f, cx);
    not_variadic(f, cx);
    no_impl_trait_args(f, cx);
    skip_names_are_arguments(f, options, cx);
    skip_not_with_key(options, cx);
    if options.handler.is_some() {
        crate::handler::check(f, options, cx);
    } else if !crate::handler::suggest(f, cx) {
        returns_a_value(f, cx);
        no_impl_trait_return(f, cx);
        cache_err_needs_result(f, options, cx);
        cache_none_needs_option(f, options, cx);
    }
}

/// The body is what is cached: a declaration without one has nothing to run.
fn has_body(f: &Function, cx: &mut Ctxt) {
    if let Some(semi) = &f.input.semi {
        cx.error_spanned_by(
            semi,
            "#[cached] needs a function body to cache; this declaration has none \
             (on a trait, give the method a default body, or cache a function that \
             the implementations call)",
        );
    }
}

/// A `const fn` may run at compile time, where no cache exists.
fn not_const(f: &Function, cx: &mut Ctxt) {
    if let Some(c) = &f.input.sig.constness {
        cx.error_spanned_by(
            c,
            "#[cached] cannot apply to a `const fn`: a cache lives at run time",
        );
    }
}

/// The generated wrapper would have to call the body in an `unsafe` block,
/// silently taking on the caller's safety obligations.
fn not_unsafe(f: &Function, cx: &mut Ctxt) {
    if let Some(u) = &f.input.sig.unsafety {
        cx.error_spanned_by(
            u,
            "#[cached] does not support `unsafe fn`: wrap a safe function instead",
        );
    }
}

/// Foreign-ABI functions are called from other languages, which know
/// nothing of the companions or of Rust types in keys.
fn not_extern(f: &Function, cx: &mut Ctxt) {
    if let Some(abi) = &f.input.sig.abi {
        cx.error_spanned_by(abi, "#[cached] does not support `extern` functions");
    }
}

/// Variadic arguments cannot be forwarded nor keyed.
fn not_variadic(f: &Function, cx: &mut Ctxt) {
    if let Some(v) = &f.input.sig.variadic {
        cx.error_spanned_by(v, "#[cached] does not support variadic functions");
    }
}

/// A function returning `()` has nothing to cache: caching it would only
/// skip its side effects.
fn returns_a_value(f: &Function, cx: &mut Ctxt) {
    if let Output::Unit(span) = f.output {
        cx.error_at(
            span,
            format!(
                "#[cached] has nothing to cache: `{}` returns `()`; a cached function must return \
                 the value to store",
                f.name()
            ),
        );
    }
    if let Output::Type(Type::Never(never)) = f.output {
        cx.error_spanned_by(
            never,
            "#[cached] has nothing to cache: this function never returns",
        );
    }
}

/// A stored value must be decoded into a type the caller can name; an
/// opaque `impl Trait` has no `Deserialize` impl to decode with.
fn no_impl_trait_return(f: &Function, cx: &mut Ctxt) {
    if let Output::Type(ty) = f.output {
        if let Some(it) = find_impl_trait(ty) {
            cx.error_at(
                span_of(it),
                "#[cached] cannot store an `impl Trait` return value: return a concrete type \
                 that is `Clone + Serialize + DeserializeOwned`",
            );
        }
    }
}

/// An `impl Trait` argument is an anonymous type parameter: its type cannot
/// be folded into the key, and the generated wrapper cannot name it.
fn no_impl_trait_args(f: &Function, cx: &mut Ctxt) {
    for arg in &f.args {
        if let Some(it) = find_impl_trait(&arg.pat_type.ty) {
            cx.error_at(
                span_of(it),
                "#[cached] does not support `impl Trait` arguments: use a named type parameter \
                 (`fn f<T: Trait>(x: T)`)",
            );
        }
    }
}

/// A misspelt `skip` would silently key by an argument meant to be left out.
fn skip_names_are_arguments(f: &Function, options: &Options, cx: &mut Ctxt) {
    let Some((_, names)) = &options.skip else {
        return;
    };
    for name in names {
        if name == "self" {
            cx.error_spanned_by(
                name,
                "`self` is never part of the key unless `key = ...` names it; remove it from `skip`",
            );
        } else if !f.bound_names().any(|bound| bound == name) {
            let known: Vec<String> = f.bound_names().map(|n| format!("`{n}`")).collect();
            let known = if known.is_empty() {
                "it has none".to_owned()
            } else {
                format!("they are {}", known.join(", "))
            };
            cx.error_spanned_by(
                name,
                format!("`{name}` is not an argument of `{}`; {known}", f.name()),
            );
        }
    }
}

/// `key = ...` replaces the derived key, so a `skip` next to it would do
/// nothing while looking as if it did.
fn skip_not_with_key(options: &Options, cx: &mut Ctxt) {
    if let (Some((keyword, _)), Some(_)) = (&options.skip, &options.key) {
        cx.error_spanned_by(
            keyword,
            "`skip` has no effect with `key = ...`, which replaces the derived key; remove one",
        );
    }
}

/// `cache_err` changes which `Result` outcomes are stored; on anything else
/// it would mean nothing.
fn cache_err_needs_result(f: &Function, options: &Options, cx: &mut Ctxt) {
    if let Some(keyword) = &options.cache_err {
        if !matches!(f.shape(), ShapeKind::Result(..)) {
            cx.error_spanned_by(
                keyword,
                "`cache_err` applies to functions returning `Result`; this one does not",
            );
        }
    }
}

/// `cache_none` changes which `Option` outcomes are stored; on anything
/// else it would mean nothing.
fn cache_none_needs_option(f: &Function, options: &Options, cx: &mut Ctxt) {
    if let Some(keyword) = &options.cache_none {
        if !matches!(f.shape(), ShapeKind::Option(_)) {
            cx.error_spanned_by(
                keyword,
                "`cache_none` applies to functions returning `Option`; this one does not",
            );
        }
    }
}

/// The first `impl Trait` inside `ty`.
pub fn find_impl_trait(ty: &Type) -> Option<&TypeImplTrait> {
    #[derive(Default)]
    struct Find<'a>(Option<&'a TypeImplTrait>);
    impl<'a> Visit<'a> for Find<'a> {
        fn visit_type_impl_trait(&mut self, it: &'a TypeImplTrait) {
            self.0.get_or_insert(it);
        }
    }
    let mut find = Find::default();
    find.visit_type(ty);
    find.0
}
