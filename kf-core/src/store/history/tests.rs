use super::*;

#[test]
fn hits_fold_ascii_only_and_keep_char_boundaries() {
    assert_eq!(find_hits("Refund REFUND refund", "rEfUnD").len(), 3);
    assert_eq!(find_hits("aaaa", "aa"), vec![(0, 2), (2, 4)]);
    assert_eq!(find_hits("订单已发货，发货单号", "发货"), vec![(9, 15), (18, 24)]);
    assert!(find_hits("ÉCOLE", "école").is_empty());
    assert!(find_hits("short", "").is_empty());
    assert!(text_matches("Where is my REFUND?", "refund"));
    assert!(!text_matches("发", "发货"));
}

#[test]
fn snippets_escape_and_mark_and_cut() {
    let h = Highlight::default();
    assert_eq!(
        h.snippet("<b>Refund</b> & more", Some("refund")),
        "&lt;b&gt;<mark>Refund</mark>&lt;/b&gt; &amp; more"
    );
    let long = format!("{}发货{}", "前".repeat(100), "后".repeat(100));
    let snippet = Highlight {
        context: 3,
        ..Highlight::default()
    }
    .snippet(&long, Some("发货"));
    assert_eq!(snippet, "…前前前<mark>发货</mark>后后后…");
    let raw = Highlight {
        escape_html: false,
        ..Highlight::new("[", "]")
    };
    assert_eq!(raw.snippet("a<b", Some("<")), "a[<]b");
    assert_eq!(
        Highlight {
            context: 2,
            ..Highlight::default()
        }
        .snippet("abcdef", None),
        "abcd…"
    );
}

#[test]
fn cursors_and_formats_round_trip() {
    assert_eq!("h42".parse::<HistoryCursor>().expect("cursor"), HistoryCursor(42));
    assert_eq!(HistoryCursor(7).to_string(), "h7");
    assert!("42".parse::<HistoryCursor>().is_err());
    assert_eq!("csv".parse::<ExportFormat>().expect("csv"), ExportFormat::Csv);
    assert!("xml".parse::<ExportFormat>().is_err());
    assert_eq!("open".parse::<StateFilter>().expect("open"), StateFilter::Open);
    assert_eq!(
        time_text(Timestamp(1_700_000_000_123)),
        "2023-11-14T22:13:20.123Z"
    );
}

#[test]
fn csv_quotes_as_rfc_4180() {
    let rows = [["a,b".to_owned(), "say \"hi\"\nthen".to_owned()]];
    let bytes = encode_csv(Some(&["x", "y"]), &rows).expect("csv");
    assert_eq!(&bytes[..], b"x,y\r\n\"a,b\",\"say \"\"hi\"\"\nthen\"\r\n");
}
