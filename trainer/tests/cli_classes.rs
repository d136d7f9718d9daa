//! Class names must line up with the label columns: `eval` refuses data whose classes are not
//! the model's (other names, another order, another count), and `--classes` with a COCO file
//! is checked against its columns (the category names sorted by name), never a rename. The
//! errors name both lists and say what to do. Uses the tiny toy backbone (no Lite0 needed).

mod cli_util;

use std::path::{Path, PathBuf};

use cli_util::{fails, fresh_dir, ok, s, toy_backbone, write_png};

/// A list file of `n` 16-px images whose label rows cycle through `rows`.
fn list(dir: &Path, name: &str, n: u32, rows: &[&str]) -> PathBuf {
    let img = dir.join("img");
    std::fs::create_dir_all(&img).unwrap();
    let mut text = String::new();
    for i in 0..n {
        write_png(&img.join(format!("{name}{i}.png")), 16, i);
        text.push_str(&format!(
            "img/{name}{i}.png {}\n",
            rows[i as usize % rows.len()]
        ));
    }
    let path = dir.join(format!("{name}.txt"));
    std::fs::write(&path, text).unwrap();
    path
}

/// A COCO instances file over `n` images of `img/`, with the categories "zebra" (id 1) and
/// "apple" (id 2) in that order: its label columns are apple, zebra.
fn coco(dir: &Path, n: u32) -> PathBuf {
    let img = dir.join("img");
    std::fs::create_dir_all(&img).unwrap();
    let mut images = Vec::new();
    let mut annotations = Vec::new();
    for i in 0..n {
        write_png(&img.join(format!("coco{i}.png")), 16, i);
        images.push(format!(r#"{{"id": {i}, "file_name": "img/coco{i}.png"}}"#));
        annotations.push(format!(
            r#"{{"id": {i}, "image_id": {i}, "category_id": {}, "area": 10.0, "bbox": [0, 0, 4, 4], "iscrowd": 0}}"#,
            1 + i % 2
        ));
    }
    let json = format!(
        r#"{{"images": [{}], "annotations": [{}], "categories": [{{"id": 1, "name": "zebra"}}, {{"id": 2, "name": "apple"}}]}}"#,
        images.join(", "),
        annotations.join(", ")
    );
    let path = dir.join("instances.json");
    std::fs::write(&path, json).unwrap();
    path
}

fn train_args<'a>(bb: &'a Path, out: &'a Path, data: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["train", "--backbone", s(bb)];
    a.extend_from_slice(data);
    a.extend_from_slice(&[
        "--bits",
        "8",
        "--hidden",
        "none",
        "--epochs",
        "1",
        "--r",
        "5",
        "--out",
        s(out),
    ]);
    a
}

#[test]
fn eval_refuses_data_of_other_classes() {
    let dir = fresh_dir("classes-eval");
    let bb = toy_backbone(&dir);
    let rows = ["1 0", "0 1", "1 1"];
    let (train, query, db) = (
        list(&dir, "train", 9, &rows),
        list(&dir, "query", 3, &rows),
        list(&dir, "db", 6, &rows),
    );
    let classes = dir.join("classes.txt");
    std::fs::write(&classes, "cat\ndog\n").unwrap();
    let model = dir.join("m.icsm");
    let data = [
        "--train",
        s(&train),
        "--query",
        s(&query),
        "--database",
        s(&db),
        "--classes",
        s(&classes),
    ];
    ok(&train_args(&bb, &model, &data));
    let out = dir.join("eval");
    let eval = |classes: Option<&Path>, query: &Path, db: &Path| {
        let mut a = vec![
            "eval",
            "--model",
            s(&model),
            "--query",
            s(query),
            "--database",
            s(db),
            "--r",
            "5",
            "--no-plots",
            "--out",
            s(&out),
        ];
        if let Some(c) = classes {
            a.extend_from_slice(&["--classes", s(c)]);
        }
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run_ok = |a: Vec<String>| ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let run_fails = |a: Vec<String>| fails(&a.iter().map(String::as_str).collect::<Vec<_>>());

    // The same classes: evaluated; without --classes there are no names to compare.
    run_ok(eval(Some(&classes), &query, &db));
    run_ok(eval(None, &query, &db));
    // The same classes in another order: refused, naming both lists and what to do.
    let swapped = dir.join("swapped.txt");
    std::fs::write(&swapped, "dog\ncat\n").unwrap();
    let e = run_fails(eval(Some(&swapped), &query, &db));
    assert!(
        e.contains("m.icsm was trained on other classes than the label columns of the query split")
            && e.contains("the same 2 classes in another order")
            && e.contains(r#"column 0 is "cat" in the model, "dog" in the data"#)
            && e.contains(r#"the model: "cat", "dog""#)
            && e.contains(r#"the data: "dog", "cat""#)
            && e.contains("--classes with those names"),
        "{e}"
    );
    // Other names.
    let other = dir.join("other.txt");
    std::fs::write(&other, "cat\nfox\n").unwrap();
    let e = run_fails(eval(Some(&other), &query, &db));
    assert!(
        e.contains(r#"1 of 2 columns differ: column 1 is "dog" in the model, "fox" in the data"#),
        "{e}"
    );
    // Another number of classes, even without names.
    let rows3 = ["1 0 0", "0 1 1"];
    let (q3, db3) = (list(&dir, "q3", 3, &rows3), list(&dir, "db3", 4, &rows3));
    let e = run_fails(eval(None, &q3, &db3));
    assert!(
        e.contains("different numbers of classes")
            && e.contains("(2 classes)")
            && e.contains("(3 classes)"),
        "{e}"
    );
}

#[test]
fn classes_with_a_coco_file_are_checked_not_renamed() {
    let dir = fresh_dir("classes-coco");
    let bb = toy_backbone(&dir);
    let json = coco(&dir, 8);
    let model = dir.join("coco.icsm");
    // The categories in file order are not the columns: refused, with both lists.
    let file_order = dir.join("file-order.txt");
    std::fs::write(&file_order, "zebra\napple\n").unwrap();
    let data = [
        "--train",
        s(&json),
        "--query",
        s(&json),
        "--database",
        s(&json),
    ];
    fn with<'a>(data: &[&'a str], classes: &'a Path) -> Vec<&'a str> {
        let mut d = data.to_vec();
        d.extend_from_slice(&["--classes", s(classes)]);
        d
    }
    let e = fails(&train_args(&bb, &model, &with(&data, &file_order)));
    assert!(
        e.contains("file-order.txt: the class names differ from the categories of the COCO file")
            && e.contains("sorted by name")
            && e.contains(r#"--classes: "zebra", "apple""#)
            && e.contains(r#"COCO: "apple", "zebra""#)
            && e.contains("Leave out --classes with COCO files"),
        "{e}"
    );
    // The sorted names are accepted, as is no --classes; the model's classes are the columns.
    let sorted = dir.join("sorted.txt");
    std::fs::write(&sorted, "apple\nzebra\n").unwrap();
    ok(&train_args(&bb, &model, &with(&data, &sorted)));
    ok(&train_args(&bb, &model, &data));
    let mf = ics_train::model_file::ModelFile::load(&model).unwrap();
    assert_eq!(mf.class_names, ["apple", "zebra"]);

    // A COCO model against list files of other classes: refused.
    let rows = ["1 0", "0 1"];
    let (q, db) = (list(&dir, "q", 3, &rows), list(&dir, "db", 4, &rows));
    let names = dir.join("names.txt");
    std::fs::write(&names, "cat\ndog\n").unwrap();
    let e = fails(&[
        "eval",
        "--model",
        s(&model),
        "--query",
        s(&q),
        "--database",
        s(&db),
        "--classes",
        s(&names),
        "--r",
        "5",
        "--no-plots",
        "--out",
        s(&dir.join("eval")),
    ]);
    assert!(
        e.contains(r#"the model: "apple", "zebra""#) && e.contains(r#"the data: "cat", "dog""#),
        "{e}"
    );
}
