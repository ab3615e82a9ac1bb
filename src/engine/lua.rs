//! Assembly of our Lua scripts from `src/scripts/*.lua` and the shared helpers in
//! `src/scripts/include/*.lua`.
//!
//! Redis `EVAL` cannot share code between scripts, so helpers live once in an include file and
//! are inlined into every script that asks for them. A script (or an include) declares what it
//! uses with directive lines right after its header comment:
//!
//! ```lua
//! --@include rcall, read_meta, enqueue
//! ```
//!
//! [`assemble`](crate::engine::lua::assemble) replaces the first directive line with the includes (each exactly once, the
//! ones an include needs before it, otherwise in the order they were asked for) and drops the
//! directive lines; everything else is kept as written. Each text is assembled once, when the
//! first script is used (`scripts::TEXTS`: the `Script`s and `SCRIPT LOAD` share it). The jest specs get these texts from the testing addon
//! (`testScriptSources`), not from a copy of this assembler.

/// The marker of a directive line.
const DIRECTIVE: &str = "--@include";

/// `(name, text)` of `src/scripts/include/<name>.lua`.
macro_rules! include_lua {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../scripts/include/", $name, ".lua")))),*]
    };
}

/// Every file of `src/scripts/include/`, by name (the file name without `.lua`).
pub static INCLUDES: &[(&str, &str)] = include_lua![
    "delayed_score",
    "emit",
    "enqueue",
    "every_next",
    "fetch",
    "is_maxed",
    "is_scheduler_job",
    "job_fields",
    "mark_delayed",
    "next_due",
    "pending_again",
    "place_new",
    "promote_due",
    "queue_at",
    "rcall",
    "read_meta",
    "remove_job",
    "remove_tree",
    "requeue_dedup",
    "unlock",
    "wake",
];

/// The names a text's directive lines ask for, in order.
fn directives(name: &str, source: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in source.lines() {
        let Some(list) = line.strip_prefix(DIRECTIVE) else {
            continue;
        };
        for item in list.split(',') {
            let item = item.trim();
            if item.is_empty() || !item.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                panic!("{name}: malformed `{DIRECTIVE}` line `{line}`");
            }
            out.push(item.to_owned());
        }
    }
    out
}

/// The text of `source` with its directive lines dropped, the first one replaced by `inlined`.
fn splice(source: &str, inlined: &str) -> String {
    let mut out = String::with_capacity(source.len() + inlined.len());
    let mut done = false;
    for line in source.split_inclusive('\n') {
        if line.starts_with(DIRECTIVE) {
            if !done {
                out.push_str(inlined);
                done = true;
            }
        } else {
            out.push_str(line);
        }
    }
    out
}

/// Adds `wanted` (after what it needs) to `order`. `path` is the chain being resolved, to
/// report a cycle.
fn visit<'a>(
    script: &str,
    wanted: &str,
    includes: &[(&'a str, &'a str)],
    order: &mut Vec<(&'a str, &'a str)>,
    path: &mut Vec<String>,
) {
    if order.iter().any(|(n, _)| *n == wanted) {
        return;
    }
    if path.iter().any(|p| p == wanted) {
        panic!("{script}: include cycle {} -> {wanted}", path.join(" -> "));
    }
    let Some(&(name, text)) = includes.iter().find(|(n, _)| *n == wanted) else {
        panic!("{script}: unknown include `{wanted}` (no src/scripts/include/{wanted}.lua)");
    };
    path.push(name.to_owned());
    for dep in directives(&format!("include/{name}.lua"), text) {
        visit(script, &dep, includes, order, path);
    }
    path.pop();
    order.push((name, text));
}

/// The text of the script `name` (for messages) with its includes inlined: at the place of its
/// first directive line, every include it asks for and everything those need, each exactly
/// once and after what it needs. A script without directives is returned unchanged.
///
/// Panics on an unknown include, a malformed directive or a cycle: a programming error,
/// caught by the unit test that assembles every script.
pub fn assemble(name: &str, source: &str, includes: &[(&str, &str)]) -> String {
    let wanted = directives(name, source);
    if wanted.is_empty() {
        return source.to_owned();
    }
    let mut order = Vec::new();
    for w in &wanted {
        visit(name, w, includes, &mut order, &mut Vec::new());
    }
    let parts: Vec<String> = order.iter().map(|(_, text)| splice(text, "")).collect();
    splice(source, &parts.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    const TABLE: &[(&str, &str)] = &[
        ("a", "-- a\nlocal a = 1\n"),
        ("b", "-- b\n--@include a\nlocal b = a + 1\n"),
        ("c", "-- c\n--@include a, b\nlocal c = a + b\n"),
        ("loop1", "--@include loop2\n"),
        ("loop2", "--@include loop1\n"),
    ];

    #[test]
    fn without_directives_the_source_is_unchanged() {
        let src = "--[[\n  x: y\n]]\nreturn 1\n";
        assert_eq!(assemble("x", src, TABLE), src);
    }

    #[test]
    fn dependencies_first_each_once_at_the_directive() {
        let src = "--[[ head ]]\n--@include c, b\n\nreturn c\n";
        assert_eq!(
            assemble("x", src, TABLE),
            "--[[ head ]]\n-- a\nlocal a = 1\n\n-- b\nlocal b = a + 1\n\n-- c\nlocal c = a + b\n\nreturn c\n"
        );
    }

    #[test]
    fn several_directive_lines_are_one_list() {
        let src = "--@include b\n--@include a\nreturn b\n";
        assert_eq!(
            assemble("x", src, TABLE),
            "-- a\nlocal a = 1\n\n-- b\nlocal b = a + 1\nreturn b\n"
        );
    }

    #[test]
    #[should_panic(expected = "x: unknown include `nope` (no src/scripts/include/nope.lua)")]
    fn unknown_include_panics() {
        assemble("x", "--@include a, nope\n", TABLE);
    }

    #[test]
    #[should_panic(expected = "x: include cycle loop1 -> loop2 -> loop1")]
    fn cycle_panics() {
        assemble("x", "--@include loop1\n", TABLE);
    }

    #[test]
    #[should_panic(expected = "malformed `--@include` line")]
    fn malformed_directive_panics() {
        assemble("x", "--@include a,\n", TABLE);
    }

    fn lua_files(dir: &Path) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "lua") {
                let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
                out.insert(name, std::fs::read_to_string(&path).unwrap());
            }
        }
        out
    }

    fn scripts_dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/scripts")
    }

    #[test]
    fn the_table_lists_every_include_file() {
        let on_disk = lua_files(&scripts_dir().join("include"));
        let names: Vec<&str> = INCLUDES.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            on_disk.keys().collect::<Vec<_>>(),
            "INCLUDES vs include/*.lua"
        );
        for (name, text) in INCLUDES {
            assert_eq!(*text, on_disk[*name], "include/{name}.lua");
        }
    }

    /// Lua names an include defines at its top level (`local function f` / `local f =`).
    fn defined(text: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for line in text.lines() {
            let rest = line
                .strip_prefix("local function ")
                .or_else(|| line.strip_prefix("local "));
            if let Some(rest) = rest {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                out.insert(name);
            }
        }
        out
    }

    /// Whether the code (not the comments) of `text` calls `name(`.
    fn calls(text: &str, name: &str) -> bool {
        text.lines()
            .map(|l| l.split("--").next().unwrap())
            .any(|code| {
                code.match_indices(name).any(|(i, _)| {
                    let before = code[..i].chars().next_back();
                    let after = code[i + name.len()..].trim_start();
                    !before.is_some_and(|c| {
                        c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == ':'
                    }) && after.starts_with('(')
                })
            })
    }

    /// Every script assembles (an unknown include would panic here, not at the first call),
    /// and every script and include names in its own directive each include whose functions
    /// it calls: a name missing from the directive would make Lua look up a global at run time.
    #[test]
    fn every_script_assembles_and_declares_what_it_calls() {
        let scripts = lua_files(&scripts_dir());
        assert!(scripts.len() >= 18, "scripts found: {:?}", scripts.keys());
        let includes = lua_files(&scripts_dir().join("include"));
        let texts = scripts.iter().map(|(n, t)| (format!("{n}.lua"), t)).chain(
            includes
                .iter()
                .map(|(n, t)| (format!("include/{n}.lua"), t)),
        );
        for (file, text) in texts {
            let assembled = assemble(&file, text, INCLUDES);
            assert!(!assembled.contains(DIRECTIVE), "{file}: directive left");
            let own: BTreeSet<String> = directives(&file, text).into_iter().collect();
            for (inc, inc_text) in INCLUDES {
                if file == format!("include/{inc}.lua") {
                    continue;
                }
                for f in defined(inc_text) {
                    if defined(text).contains(&f) {
                        continue;
                    }
                    if calls(text, &f) {
                        assert!(
                            own.contains(*inc),
                            "{file} calls {f} but does not name `{inc}` in its {DIRECTIVE} line"
                        );
                    }
                }
            }
        }
    }

    /// Each include appears exactly once in an assembled script, after those it needs.
    #[test]
    fn assembled_scripts_hold_each_include_once_in_dependency_order() {
        let scripts = lua_files(&scripts_dir());
        for (name, text) in &scripts {
            let assembled = assemble(name, text, INCLUDES);
            for (inc, inc_text) in INCLUDES {
                let body = splice(inc_text, "");
                let count = assembled.matches(body.as_str()).count();
                assert!(count <= 1, "{name}: include {inc} inlined {count} times");
                if count == 0 {
                    continue;
                }
                let at = assembled.find(body.as_str()).unwrap();
                for dep in directives(inc, inc_text) {
                    let dep_text = INCLUDES.iter().find(|(n, _)| *n == dep).unwrap().1;
                    let dep_at = assembled.find(splice(dep_text, "").as_str());
                    assert!(
                        dep_at.is_some_and(|d| d < at),
                        "{name}: {dep} not before {inc}"
                    );
                }
            }
        }
    }
}
