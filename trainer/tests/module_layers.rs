//! The library's modules import one way: each top-level module only uses modules of a lower
//! layer, and no file module uses one that uses it back. Checked over every `crate::`,
//! `super::` and `self::` path of the sources, tests included: each file is parsed with `syn`,
//! so grouped imports (`use crate::{a, b::{c, d}}`), paths in expressions and types, and paths
//! inside macro calls all count, and comments do not. The CLI (`src/cli/`, `main.rs`) sits
//! above them all and is not checked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::Visit;

/// Layer of each top-level module: a module may use only modules of a lower layer.
const LAYERS: &[(&str, usize)] = &[
    ("codes", 0),
    ("data", 0),
    ("files", 0),
    ("tensorfile", 0),
    ("ics", 1),
    ("eval", 2),
    ("onnx", 2),
    ("backbone", 3),
    ("model_file", 4),
    ("finetune", 5),
    ("export", 6),
    ("workflow", 6),
    ("benchmark", 7),
];

type Module = Vec<String>;

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `eval/set.rs` -> [eval, set]; `eval/mod.rs` -> [eval].
fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut m: Module = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if m.last().is_some_and(|l| l == "mod") {
        m.pop();
    }
    m
}

/// The modules that paths in a file of `module` name, relative to the crate root.
struct References {
    /// The module the code being visited is in: the file's, then its inline modules.
    scope: Module,
    found: Vec<Module>,
}

impl References {
    /// `path` (its segments) resolved from the current scope, if it starts at `crate`,
    /// `super` or `self`.
    fn resolve(&mut self, path: &[String]) {
        let mut target = match path.first().map(String::as_str) {
            Some("crate") => Vec::new(),
            Some("super") | Some("self") => self.scope.clone(),
            _ => return,
        };
        let mut rest = path;
        if rest[0] == "crate" {
            rest = &rest[1..];
        }
        while let Some(first) = rest.first() {
            match first.as_str() {
                "super" => {
                    if target.pop().is_none() {
                        return;
                    }
                }
                "self" => {}
                _ => break,
            }
            rest = &rest[1..];
        }
        target.extend(rest.iter().cloned());
        self.found.push(target);
    }

    /// Every path a `use` tree spells out, its groups expanded.
    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => self.use_leaf(prefix, &n.ident),
            syn::UseTree::Rename(r) => self.use_leaf(prefix, &r.ident),
            syn::UseTree::Glob(_) => self.resolve(&prefix.clone()),
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t);
                }
            }
        }
    }

    fn use_leaf(&mut self, prefix: &[String], ident: &syn::Ident) {
        let mut path = prefix.to_vec();
        // `use super::{self, x}`: `self` names the prefix itself.
        if ident != "self" || path.is_empty() {
            path.push(ident.to_string());
        }
        self.resolve(&path);
    }

    /// `crate::a::b`-like paths in a macro's tokens (`format!`, `assert!`, ...).
    fn tokens(&mut self, tokens: TokenStream) {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < tokens.len() {
            match &tokens[i] {
                TokenTree::Group(g) => self.tokens(g.stream()),
                TokenTree::Ident(id) if ["crate", "super", "self"].contains(&&*id.to_string()) => {
                    let mut path = vec![id.to_string()];
                    let mut j = i + 1;
                    while let (
                        Some(TokenTree::Punct(a)),
                        Some(TokenTree::Punct(b)),
                        Some(TokenTree::Ident(next)),
                    ) = (tokens.get(j), tokens.get(j + 1), tokens.get(j + 2))
                    {
                        if a.as_char() != ':' || b.as_char() != ':' {
                            break;
                        }
                        path.push(next.to_string());
                        j += 3;
                    }
                    if path.len() > 1 {
                        self.resolve(&path);
                    }
                    i = j;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
    }
}

impl<'ast> Visit<'ast> for References {
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &u.tree);
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        self.scope.push(m.ident.to_string());
        syn::visit::visit_item_mod(self, m);
        self.scope.pop();
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segments: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        if segments.len() > 1 {
            self.resolve(&segments);
        }
        syn::visit::visit_path(self, p);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        self.tokens(m.tokens.clone());
        syn::visit::visit_macro(self, m);
    }
}

/// The modules the source text of a file of `module` refers to (see [`References`]).
fn references(source: &str, module: &Module) -> Vec<Module> {
    let file = syn::parse_file(source).unwrap_or_else(|e| panic!("{}: {e}", module.join("::")));
    let mut r = References {
        scope: module.clone(),
        found: Vec::new(),
    };
    r.visit_file(&file);
    r.found
}

fn m(path: &str) -> Module {
    path.split("::").map(String::from).collect()
}

#[test]
fn grouped_nested_and_inline_paths_are_all_seen() {
    let source = r#"
        use crate::{data, ics::{config::{self, TrainConfig}, train}};
        use super::{adam as a, *};
        use self::inner::Thing;
        fn f() -> crate::eval::Report {
            let _ = super::super::benchmark::run();
            assert!(crate::workflow::ok(), "{}", crate::onnx::x());
        }
        // use crate::commented::Out;
        /// [`crate::doc::Link`]
        mod tests {
            use super::*;
            use super::super::loss::{self};
        }
    "#;
    let mut got = references(source, &m("ics::head"));
    got.sort();
    got.dedup();
    let mut want: Vec<Module> = [
        "data",
        "ics::config",
        "ics::config::TrainConfig",
        "ics::train",
        "ics::adam",
        "ics",
        "ics::head::inner::Thing",
        "eval::Report",
        "benchmark::run",
        "workflow::ok",
        "onnx::x",
        "ics::head",
        "ics::loss",
    ]
    .map(m)
    .to_vec();
    want.sort();
    assert_eq!(got, want);
}

/// Modules of a higher layer that `source`, a file of `module`, uses.
fn upward(source: &str, module: &str) -> Vec<String> {
    references(source, &m(module))
        .into_iter()
        .filter(|t| t[0] != m(module)[0] && layer(&t[0]) >= layer(&m(module)[0]))
        .map(|t| t.join("::"))
        .collect()
}

#[test]
fn a_grouped_upward_import_is_caught() {
    // The line-by-line scan this test replaced saw only `ics` here.
    let grouped = "use crate::{ics::train, benchmark::{plan, rows}};";
    assert_eq!(
        upward(grouped, "eval::map"),
        ["benchmark::plan", "benchmark::rows"]
    );
    let split = "use crate::{\n    ics,\n    workflow::Event,\n};";
    assert_eq!(upward(split, "onnx::head"), ["workflow::Event"]);
    assert!(upward("use crate::{data, ics::train};", "eval::map").is_empty());
}

fn layer(top: &str) -> usize {
    LAYERS
        .iter()
        .find(|(n, _)| *n == top)
        .map(|(_, l)| *l)
        .unwrap_or_else(|| panic!("module {top} has no layer in tests/module_layers.rs"))
}

#[test]
fn modules_import_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let files: Vec<(Module, PathBuf)> = files
        .into_iter()
        .map(|f| (module_of(&src, &f), f))
        .filter(|(m, _)| !m.is_empty() && m[0] != "cli" && m[0] != "lib" && m[0] != "main")
        .collect();
    let known: BTreeSet<Module> = files.iter().map(|(m, _)| m.clone()).collect();
    let mut graph: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    let mut upward = Vec::new();
    for (module, file) in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for target in references(&text, module) {
            // The longest known module prefix of the path.
            let Some(t) = (1..=target.len())
                .rev()
                .map(|k| target[..k].to_vec())
                .find(|p| known.contains(p))
            else {
                continue;
            };
            if t == *module {
                continue;
            }
            if t[0] != module[0] && layer(&t[0]) >= layer(&module[0]) {
                upward.push(format!(
                    "{}: {} uses {}",
                    file.display(),
                    module.join("::"),
                    t.join("::")
                ));
            }
            graph.entry(module.clone()).or_default().insert(t);
        }
    }
    assert!(
        upward.is_empty(),
        "modules using a module of the same or a higher layer:\n{}",
        upward.join("\n")
    );
    // No cycle between file modules (depth-first search with colours).
    fn visit(
        m: &Module,
        graph: &BTreeMap<Module, BTreeSet<Module>>,
        state: &mut BTreeMap<Module, bool>,
        stack: &mut Vec<Module>,
    ) {
        match state.get(m) {
            Some(true) => return,
            Some(false) => {
                let from = stack.iter().position(|s| s == m).unwrap();
                let cycle: Vec<String> = stack[from..].iter().map(|s| s.join("::")).collect();
                panic!("import cycle: {} -> {}", cycle.join(" -> "), m.join("::"));
            }
            None => {}
        }
        state.insert(m.clone(), false);
        stack.push(m.clone());
        for t in graph.get(m).into_iter().flatten() {
            visit(t, graph, state, stack);
        }
        stack.pop();
        state.insert(m.clone(), true);
    }
    let mut state = BTreeMap::new();
    for m in &known {
        visit(m, &graph, &mut state, &mut Vec::new());
    }
}
