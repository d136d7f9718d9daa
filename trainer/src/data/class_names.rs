//! Comparing two lists of class names (a model's and the data's, a `--classes` file and a COCO
//! file's categories): the label columns only line up when the names are the same, in the same
//! order. [`differences`] says how two lists differ, in a form errors can quote.

use super::dataset::default_class_names;

/// How many differing columns, and names of each list, an error quotes.
const SHOWN: usize = 3;

/// Whether `names` are the placeholders of a format that carries no names (`class 0`,
/// `class 1`, ...: a list file without `--classes`), so that they say nothing about the classes.
pub fn are_placeholders(names: &[String]) -> bool {
    names == default_class_names(names.len()).as_slice()
}

/// None when `a` and `b` are the same list; else one line naming the first differences, with
/// `a_name` and `b_name` for the two sides: `different numbers of classes`, `the same 20 classes in
/// another order: column 0 is "bag" in the model, "boot" in the data, ...`, or `4 of 20
/// columns differ: column 3 is ...`.
pub fn differences(a: &[String], b: &[String], a_name: &str, b_name: &str) -> Option<String> {
    if a == b {
        return None;
    }
    let list = |names: &[String]| {
        let shown: Vec<String> = names
            .iter()
            .take(2 * SHOWN)
            .map(|n| format!("{n:?}"))
            .collect();
        let more = names.len().saturating_sub(2 * SHOWN);
        if more > 0 {
            format!("{} and {more} more", shown.join(", "))
        } else {
            shown.join(", ")
        }
    };
    let count = |n: usize| {
        if n == 1 {
            "1 class".into()
        } else {
            format!("{n} classes")
        }
    };
    let lists = format!(
        "{a_name}: {} ({}); {b_name}: {} ({})",
        list(a),
        count(a.len()),
        list(b),
        count(b.len())
    );
    if a.len() != b.len() {
        return Some(format!("different numbers of classes: {lists}"));
    }
    let differing: Vec<usize> = (0..a.len()).filter(|&k| a[k] != b[k]).collect();
    let first: Vec<String> = differing
        .iter()
        .take(SHOWN)
        .map(|&k| {
            format!(
                "column {k} is {:?} in {a_name}, {:?} in {b_name}",
                a[k], b[k]
            )
        })
        .collect();
    let (mut sa, mut sb) = (a.to_vec(), b.to_vec());
    sa.sort();
    sb.sort();
    let what = if sa == sb {
        format!("the same {} classes in another order", a.len())
    } else {
        format!("{} of {} columns differ", differing.len(), a.len())
    };
    Some(format!("{what}: {}; {lists}", first.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn same_lists_have_no_differences() {
        assert_eq!(
            differences(&v(&["a", "b"]), &v(&["a", "b"]), "x", "y"),
            None
        );
    }

    #[test]
    fn differences_name_columns_and_both_lists() {
        let d = differences(
            &v(&["cat", "dog"]),
            &v(&["dog", "cat"]),
            "the model",
            "the data",
        )
        .unwrap();
        assert!(d.starts_with("the same 2 classes in another order"), "{d}");
        assert!(
            d.contains(r#"column 0 is "cat" in the model, "dog" in the data"#),
            "{d}"
        );
        assert!(d.contains(r#"the model: "cat", "dog" (2 classes)"#), "{d}");
        let d = differences(&v(&["a", "b", "c"]), &v(&["a", "x", "c"]), "m", "d").unwrap();
        assert!(d.starts_with("1 of 3 columns differ: column 1 is"), "{d}");
        let d = differences(&v(&["a"]), &v(&["a", "b"]), "m", "d").unwrap();
        assert!(
            d.starts_with("different numbers of classes: m: \"a\" (1 class)"),
            "{d}"
        );
        // Long lists are cut.
        let long: Vec<String> = (0..20).map(|k| format!("n{k}")).collect();
        let d = differences(&long, &v(&["a"]), "m", "d").unwrap();
        assert!(d.contains("and 14 more (20 classes)"), "{d}");
    }

    #[test]
    fn placeholders_are_recognised() {
        assert!(are_placeholders(&default_class_names(3)));
        assert!(!are_placeholders(&v(&["class 0", "dog"])));
    }
}
