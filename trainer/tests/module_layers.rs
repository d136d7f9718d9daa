//! The library's modules import one way: each top-level module only uses modules of a lower
//! layer, and no file module uses one that uses it back (checked over `crate::` and `super::`
//! paths of the sources, tests included; comments are skipped). The CLI (`src/cli/`,
//! `main.rs`) sits above them all and is not checked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layer of each top-level module: a module may use only modules of a lower layer.
const LAYERS: &[(&str, usize)] = &[
    ("codes", 0),
    ("data", 0),
    ("files", 0),
    ("ics", 1),
    ("eval", 2),
    ("onnx", 2),
    ("model_file", 2),
    ("backbone", 3),
    ("finetune", 4),
    ("export", 5),
    ("workflow", 5),
    ("benchmark", 6),
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

/// The `crate::`/`super::` paths of a line, as module paths relative to the crate root.
fn references(line: &str, module: &Module) -> Vec<Module> {
    let trimmed = line.trim_start();
    if trimmed.starts_with("//") {
        return Vec::new();
    }
    // `use` inside an inline module (tests): `super` is the file's own module.
    let nested = line.len() != trimmed.len() && trimmed.starts_with("use ");
    let mut out = Vec::new();
    let bytes = line.as_bytes();
    for (start, _) in line
        .match_indices("crate::")
        .chain(line.match_indices("super::"))
    {
        if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
            continue;
        }
        if start >= 7 && &line[start - 7..start] == "super::" {
            continue; // counted from the first `super::` of the chain
        }
        let path: Vec<&str> = line[start..]
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .next()
            .unwrap()
            .split("::")
            .filter(|s| !s.is_empty())
            .collect();
        let target = if path[0] == "crate" {
            path[1..].iter().map(|s| s.to_string()).collect()
        } else {
            let supers = path.iter().take_while(|s| **s == "super").count();
            let mut base = module.clone();
            let up = supers - usize::from(nested);
            if up > base.len() {
                continue;
            }
            base.truncate(base.len() - up);
            base.extend(path[supers..].iter().map(|s| s.to_string()));
            base
        };
        out.push(target);
    }
    out
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
    let layer = |top: &str| {
        LAYERS
            .iter()
            .find(|(n, _)| *n == top)
            .map(|(_, l)| *l)
            .unwrap_or_else(|| panic!("module {top} has no layer in tests/module_layers.rs"))
    };
    let mut graph: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    let mut upward = Vec::new();
    for (module, file) in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for target in references(line, module) {
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
                        "{}:{}: {} uses {}",
                        file.display(),
                        n + 1,
                        module.join("::"),
                        t.join("::")
                    ));
                }
                graph.entry(module.clone()).or_default().insert(t);
            }
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
