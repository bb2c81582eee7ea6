//! A borrowed view of the annotated function. It keeps the original syn
//! nodes, so that errors and generated checks can point at the user's tokens.

use proc_macro2::{Ident, Span, TokenStream, TokenTree};
use quote::{format_ident, ToTokens};
use syn::parse::{Parse, ParseStream};
use syn::visit::Visit;
use syn::{
    Attribute, Block, FnArg, GenericArgument, Pat, PatIdent, PatType, PathArguments, Receiver,
    ReturnType, Signature, Token, Type, Visibility,
};

/// A function item as written, free or associated, with or without a body.
pub struct Input {
    /// Its outer attributes (the macro's own is already removed by rustc).
    pub attrs: Vec<Attribute>,
    /// Its visibility (inherited in traits).
    pub vis: Visibility,
    /// Its signature.
    pub sig: Signature,
    /// Its body; `None` for a trait method declared without one.
    pub body: Option<Box<Block>>,
    /// The `;` of a body-less declaration.
    pub semi: Option<Token![;]>,
}

impl Parse for Input {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        if !starts_fn(input) {
            return Err(input.error(
                "this attribute applies to functions only (free functions, methods and \
                 associated functions)",
            ));
        }
        let sig: Signature = input.parse()?;
        let (body, semi) = if input.peek(Token![;]) {
            (None, Some(input.parse()?))
        } else {
            (Some(Box::new(input.parse()?)), None)
        };
        Ok(Input {
            attrs,
            vis,
            sig,
            body,
            semi,
        })
    }
}

/// Whether a function signature starts here (`const`, `async`, `unsafe`,
/// `extern` or `fn`), as opposed to a `const` item or any other item.
fn starts_fn(input: ParseStream) -> bool {
    let fork = input.fork();
    let _ = fork.parse::<Option<Token![const]>>();
    let _ = fork.parse::<Option<Token![async]>>();
    let _ = fork.parse::<Option<Token![unsafe]>>();
    if fork.parse::<Option<syn::Abi>>().is_err() {
        return false;
    }
    fork.peek(Token![fn])
}

/// The view of a function that the checks and the code generation share.
pub struct Function<'a> {
    /// The function as written.
    pub input: &'a Input,
    /// `self`, `&self`, `&mut self`, `self: Arc<Self>`...
    pub receiver: Option<&'a Receiver>,
    /// The arguments other than the receiver.
    pub args: Vec<Arg<'a>>,
    /// What it returns.
    pub output: Output<'a>,
}

/// One argument.
pub struct Arg<'a> {
    /// `pattern: Type` as written.
    pub pat_type: &'a PatType,
    /// How its pattern binds.
    pub binding: Binding<'a>,
    /// The name generated code passes it on by.
    pub forward: Ident,
}

/// How an argument's pattern binds names.
pub enum Binding<'a> {
    /// A plain name (`id`, `mut id`): the argument is passed on by it.
    Name(&'a PatIdent),
    /// A destructuring pattern (`(a, b)`, `Point { x, y }`, `_`), with the
    /// names it binds; the argument is passed on under a generated name.
    Pattern(Vec<&'a Ident>),
}

/// What a function returns.
pub enum Output<'a> {
    /// Nothing (`-> ()` or no arrow), with the span to blame.
    Unit(Span),
    /// A type.
    Type(&'a Type),
}

/// The syntactic shape of a return type: which outcomes are cached.
pub enum ShapeKind<'a> {
    /// `...::Result<T, E>` (or an alias with one argument, without `E`):
    /// `T` is stored.
    Result(&'a Type, Option<&'a Type>),
    /// `...::Option<T>`: `T` is stored.
    Option(&'a Type),
    /// Anything else: stored whole.
    Plain,
}

impl<'a> Function<'a> {
    /// The view of `input`.
    pub fn from_input(input: &'a Input) -> Self {
        let mut receiver = None;
        let mut args = Vec::new();
        for (index, arg) in input.sig.inputs.iter().enumerate() {
            match arg {
                FnArg::Receiver(r) => receiver = Some(r),
                FnArg::Typed(pat_type) => args.push(Arg::new(index, pat_type)),
            }
        }
        let output = match &input.sig.output {
            ReturnType::Default => Output::Unit(input.sig.ident.span()),
            ReturnType::Type(_, ty) => match &**ty {
                Type::Tuple(t) if t.elems.is_empty() => Output::Unit(span_of(t)),
                ty => Output::Type(ty),
            },
        };
        Function {
            input,
            receiver,
            args,
            output,
        }
    }

    /// The function's name.
    pub fn name(&self) -> &'a Ident {
        &self.input.sig.ident
    }

    /// Whether the function surely is an associated one: it has a receiver,
    /// or its signature names `Self` (which a free function cannot).
    pub fn surely_associated(&self) -> bool {
        self.receiver.is_some() || mentions_self(self.input.sig.to_token_stream())
    }

    /// The names the arguments bind, in order.
    pub fn bound_names(&self) -> impl Iterator<Item = &'a Ident> + '_ {
        self.args.iter().flat_map(|arg| match &arg.binding {
            Binding::Name(p) => vec![&p.ident],
            Binding::Pattern(names) => names.clone(),
        })
    }

    /// The shape of the return type, if it has one.
    pub fn shape(&self) -> ShapeKind<'a> {
        match self.output {
            Output::Type(ty) => shape_of(ty),
            Output::Unit(_) => ShapeKind::Plain,
        }
    }
}

impl<'a> Arg<'a> {
    fn new(index: usize, pat_type: &'a PatType) -> Self {
        let (binding, forward) = match &*pat_type.pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => {
                (Binding::Name(p), p.ident.clone())
            }
            pat => {
                let mut names = Names::default();
                names.visit_pat(pat);
                (
                    Binding::Pattern(names.0),
                    format_ident!("__memocache_arg{}", index, span = span_of(pat)),
                )
            }
        };
        Arg {
            pat_type,
            binding,
            forward,
        }
    }
}

/// The names a pattern binds.
#[derive(Default)]
struct Names<'a>(Vec<&'a Ident>);

impl<'a> Visit<'a> for Names<'a> {
    fn visit_pat_ident(&mut self, p: &'a PatIdent) {
        self.0.push(&p.ident);
        syn::visit::visit_pat_ident(self, p);
    }
}

/// The shape of `ty`, from the last segment of its path: the macro cannot
/// resolve types, and `Result`/`Option` aliases keep these names in practice.
pub fn shape_of(ty: &Type) -> ShapeKind<'_> {
    let Type::Path(path) = ty else {
        return ShapeKind::Plain;
    };
    let Some(last) = path.path.segments.last() else {
        return ShapeKind::Plain;
    };
    let PathArguments::AngleBracketed(generics) = &last.arguments else {
        return ShapeKind::Plain;
    };
    let mut types = generics.args.iter().filter_map(|arg| match arg {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    });
    let first = types.next();
    match (last.ident.to_string().as_str(), first) {
        ("Result", Some(ok)) => ShapeKind::Result(ok, types.next()),
        ("Option", Some(some)) => ShapeKind::Option(some),
        _ => ShapeKind::Plain,
    }
}

/// Whether `tokens` name `Self` anywhere.
fn mentions_self(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|t| match t {
        TokenTree::Ident(i) => i == "Self",
        TokenTree::Group(g) => mentions_self(g.stream()),
        _ => false,
    })
}

/// The span of the first token of `node`: stable Rust cannot join spans, and
/// the first token is where an error about the node belongs.
pub fn span_of<T: ToTokens>(node: &T) -> Span {
    node.to_token_stream()
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |t| t.span())
}
