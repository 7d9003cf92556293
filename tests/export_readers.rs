//! Every export writer's output read back by an independent reader: the `csv` crate, calamine
//! (XLSX), serde_json (JSON, GeoJSON) and `zip` + `csv` (LIVES). Pure: no database, so there is
//! nothing to run on two backends. tests/clients/run-export-tests.sh runs `write_fixtures`
//! and then reads the same files with Python's csv/openpyxl/zipfile/json.

use std::io::{Cursor, Read};

use calamine::{Data, Reader, Xlsx};
use chrono::NaiveDate;
use foodcheck::export::cell::neutralise;
use foodcheck::export::csv::{EntryCsv, InspectionCsv};
use foodcheck::export::geojson::GeoJsonWriter;
use foodcheck::export::json::{IssueMeta, JsonWriter};
use foodcheck::export::lives::{LivesFeed, LivesWriter};
use foodcheck::export::rows::ResultCode;
use foodcheck::export::xlsx::{cell_text, XlsxListWriter};
use foodcheck::export::{
    stream, DatedNote, ExportEntry, ExportInspection, ExportIssue, FailedItem, InspectionType,
    ListType, ENTRY_HEADERS, INSPECTION_HEADERS,
};

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// Text that must come out neutralised.
const FORMULAS: [&str; 7] = [
    "=HYPERLINK(\"http://evil.example/\",\"点我领奖\")",
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
    "=1+1,\"引号\"\r\n换行",
];

fn issue() -> ExportIssue {
    ExportIssue {
        issue_no: "2026年第11期".into(),
        revision: 2,
        revision_note: Some("更正第3条的经营地址".into()),
        title: "宝坻区餐饮服务食品安全红黑榜".into(),
        theme: "校园周边".into(),
        district: "宝坻区".into(),
        period_start: day("2026-10-01"),
        period_end: day("2026-10-31"),
        published_on: day("2026-11-05"),
        criteria: "红榜：检查结果为符合且无重点项不符合；黑榜：检查结果为不符合或重点项不符合。"
            .into(),
    }
}

fn entries() -> Vec<ExportEntry> {
    let base = |i: u32, t: ListType| ExportEntry {
        list_type: t,
        position: i,
        establishment_id: format!("00000000-0000-4000-8000-{i:012}"),
        sign_name: format!("老王烧烤{i}号店"),
        licensed_name: "天津市宝坻区老王餐饮有限公司".into(),
        license_no: Some(format!("JY1120100000{i:04}")),
        address: "宝坻区钰华街道南关大街1-3号".into(),
        town: "钰华街道".into(),
        category: "餐饮服务".into(),
        inspected_on: Some(day("2026-10-12")),
        result: Some(if t == ListType::Red {
            ResultCode::Compliant
        } else {
            ResultCode::NonCompliant
        }),
        reason: "后厨整洁，台账齐全".into(),
        measures: (t == ListType::Black).then(|| "责令改正通知书".into()),
        rectification: None,
        revocation: None,
        lng: Some(117.3081 + f64::from(i) / 1000.0),
        lat: Some(39.7170),
    };
    let mut v = Vec::new();
    for (i, f) in FORMULAS.iter().enumerate() {
        let mut e = base(i as u32 + 1, ListType::Red);
        e.sign_name = (*f).to_string();
        e.reason = format!("理由, \"含引号\"\r\n第二行 {i}");
        v.push(e);
    }
    let mut revoked = base(8, ListType::Red);
    revoked.revocation = Some(DatedNote {
        text: "2026-11-20 复查不符合，撤销红榜".into(),
        on: day("2026-11-20"),
    });
    revoked.lng = None; // no point
    v.push(revoked);
    for i in 1..=4 {
        let mut e = base(100 + i, ListType::Black);
        e.position = i;
        if i == 1 {
            e.rectification = Some(DatedNote {
                text: "已整改，复查符合".into(),
                on: day("2026-11-15"),
            });
        }
        if i == 2 {
            e.lat = Some(95.0); // out of range: no point rather than a wrong one
            e.measures = Some("@立案调查".into());
        }
        v.push(e);
    }
    v
}

fn inspections() -> Vec<ExportInspection> {
    entries()
        .iter()
        .map(|e| ExportInspection {
            establishment_id: e.establishment_id.clone(),
            date: day("2026-10-12"),
            result: e.result.unwrap(),
            kind: InspectionType::Routine,
            failed_items: if e.list_type == ListType::Black {
                vec![
                    FailedItem {
                        code: "4.1".into(),
                        text: "=未按要求贮存食品, \"冷藏\"".into(),
                    },
                    FailedItem {
                        code: "8.4".into(),
                        text: "从业人员无健康证明".into(),
                    },
                ]
            } else {
                vec![]
            },
        })
        .collect()
}

fn feed() -> LivesFeed {
    LivesFeed {
        feed_date: day("2026-11-05"),
        feed_version: "2026年第11期-2".into(),
        municipality_name: "天津市宝坻区市场监督管理局".into(),
        municipality_url: "https://example.gov.cn/".into(),
        contact_email: "opendata@example.gov.cn".into(),
        city: "宝坻区".into(),
        state: "天津市".into(),
    }
}

fn csv_bytes() -> Vec<u8> {
    let mut w = EntryCsv::new(Vec::new()).unwrap();
    for e in entries() {
        w.entry(&e).unwrap();
    }
    w.finish().unwrap()
}

fn xlsx_bytes() -> Vec<u8> {
    let mut w = XlsxListWriter::new(Vec::new(), &issue()).unwrap();
    for e in entries() {
        w.entry(&e).unwrap();
    }
    w.finish().unwrap()
}

fn geojson_bytes() -> Vec<u8> {
    let mut w = GeoJsonWriter::new(Vec::new(), &issue()).unwrap();
    for e in entries() {
        w.entry(&e).unwrap();
    }
    w.finish().unwrap()
}

fn json_bytes() -> Vec<u8> {
    let issue = issue();
    let mut w = JsonWriter::new(Vec::new(), &IssueMeta::new(&issue)).unwrap();
    for e in entries() {
        w.item(&e).unwrap();
    }
    w.finish().unwrap()
}

fn lives_bytes() -> Vec<u8> {
    let mut w = LivesWriter::new(Vec::new(), feed()).unwrap();
    for e in entries() {
        w.business(&(&e).into()).unwrap();
    }
    for i in inspections() {
        w.inspection(&i).unwrap();
    }
    w.finish().unwrap()
}

/// serde_json parses floats to within an ulp without its `float_roundtrip` feature (the
/// output is the shortest exact form; Python reads it back exactly).
fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() < 1e-9,
        (a, b) => a == b,
    }
}

fn read_csv(bytes: &[u8]) -> Vec<Vec<String>> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes);
    r.records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

#[test]
fn csv_has_bom_crlf_and_round_trips_neutralised_text() {
    let bytes = csv_bytes();
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "UTF-8 BOM");
    let text = std::str::from_utf8(&bytes[3..]).unwrap();
    assert!(text.starts_with(&format!("{}\r\n", ENTRY_HEADERS.join(","))));
    assert!(text.ends_with("\r\n"));
    let rows = read_csv(&bytes[3..]);
    assert_eq!(rows[0], ENTRY_HEADERS);
    let es = entries();
    assert_eq!(rows.len(), es.len() + 1);
    for (row, e) in rows[1..].iter().zip(&es) {
        assert_eq!(row.len(), ENTRY_HEADERS.len());
        assert_eq!(row[0], e.list_type.label_zh());
        assert_eq!(row[1], e.position.to_string());
        assert_eq!(row[3], neutralise(&e.sign_name), "牌匾名称");
        assert_eq!(row[4], e.licensed_name, "Chinese text round-trips");
        assert_eq!(row[11], e.reason, "quotes, commas and CR/LF round-trip");
        assert_eq!(row[12], neutralise(e.measures.as_deref().unwrap_or("")));
    }
    for (row, f) in rows[1..].iter().zip(FORMULAS) {
        assert!(row[3].starts_with('\''), "{f:?} -> {:?}", row[3]);
        assert_eq!(&row[3][1..], f);
    }
    // The revoked red entry: dates as text, no point.
    let revoked = &rows[8];
    assert_eq!(revoked[16], "2026-11-20");
    assert_eq!((revoked[17].as_str(), revoked[18].as_str()), ("", ""));
    // Black 1 rectified; black 2 out of range -> no point, measures neutralised.
    assert_eq!(rows[9][13], "已整改，复查符合");
    assert_eq!(rows[9][14], "2026-11-15");
    assert_eq!(rows[9][17], "117.4091");
    assert_eq!(rows[10][17], "");
    assert_eq!(rows[10][12], "'@立案调查");
}

#[test]
fn inspection_csv_joins_failed_items() {
    let mut w = InspectionCsv::new(Vec::new()).unwrap();
    for i in inspections() {
        w.inspection(&i).unwrap();
    }
    let bytes = w.finish().unwrap();
    let rows = read_csv(&bytes[3..]);
    assert_eq!(rows[0], INSPECTION_HEADERS);
    let black = rows.iter().find(|r| r[2] == "不符合").unwrap();
    assert_eq!(black[3], "日常检查");
    assert_eq!(black[4], "4.1;8.4");
    assert_eq!(
        black[5],
        "4.1 =未按要求贮存食品, \"冷藏\"；8.4 从业人员无健康证明"
    );
}

#[test]
fn xlsx_sheets_headers_text_and_no_formulas() {
    let bytes = xlsx_bytes();
    let mut wb = Xlsx::new(Cursor::new(bytes.clone())).unwrap();
    assert_eq!(wb.sheet_names(), vec!["红榜", "黑榜", "说明"]);
    let es = entries();
    for &t in ListType::ALL {
        let range = wb.worksheet_range(t.label_zh()).unwrap();
        let rows: Vec<&[Data]> = range.rows().collect();
        let header: Vec<String> = rows[0].iter().map(|c| c.to_string()).collect();
        assert_eq!(header, ENTRY_HEADERS[1..]);
        let mine: Vec<&ExportEntry> = es.iter().filter(|e| e.list_type == t).collect();
        assert_eq!(rows.len(), mine.len() + 1, "{t:?}");
        for (row, e) in rows[1..].iter().zip(&mine) {
            assert_eq!(row[0], Data::Float(f64::from(e.position)));
            assert_eq!(row[2], Data::String(cell_text(&e.sign_name).into_owned()));
            assert_eq!(row[3], Data::String(e.licensed_name.clone()));
            assert_eq!(row[10], Data::String(e.reason.replace("\r\n", "\n")));
        }
        let formulas = wb.worksheet_formula(t.label_zh()).unwrap();
        assert!(
            formulas.used_cells().all(|(_, _, f)| f.is_empty()),
            "no formula cells"
        );
    }
    let red = wb.worksheet_range("红榜").unwrap();
    for (i, f) in FORMULAS.iter().enumerate() {
        let lf = f.replace("\r\n", "\n").replace('\r', "\n");
        assert_eq!(red.get((i + 1, 2)), Some(&Data::String(format!("'{lf}"))));
    }
    let notes = wb.worksheet_range("说明").unwrap();
    let text: Vec<String> = notes.rows().map(|r| format!("{}={}", r[0], r[1])).collect();
    assert!(text.contains(&"期号=2026年第11期".to_string()), "{text:?}");
    assert!(text.contains(&"修订说明=更正第3条的经营地址".to_string()));
    assert!(text
        .iter()
        .any(|t| t.starts_with("声明=检查结果仅反映检查时")));
    assert!(text
        .iter()
        .any(|t| t.starts_with("开放许可=") && t.contains("CC BY 4.0")));
    assert!(text.iter().any(|t| t.starts_with("上榜标准=红榜")));

    // Frozen header row and set widths, in the sheet XML itself.
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut xml = String::new();
    zip.by_name("xl/worksheets/sheet1.xml")
        .unwrap()
        .read_to_string(&mut xml)
        .unwrap();
    assert!(
        xml.contains(r#"ySplit="1""#) && xml.contains(r#"state="frozen""#),
        "{xml:.600}"
    );
    assert!(xml.contains(r#"width="44.7"#) || xml.contains(r#"customWidth="1""#));
}

#[test]
fn geojson_is_wgs84_lng_lat_with_null_geometry_without_a_point() {
    let v: serde_json::Value = serde_json::from_slice(&geojson_bytes()).unwrap();
    assert_eq!(v["type"], "FeatureCollection");
    assert_eq!(v["issue"]["issue_no"], "2026年第11期");
    let features = v["features"].as_array().unwrap();
    let es = entries();
    assert_eq!(features.len(), es.len());
    for (f, e) in features.iter().zip(&es) {
        assert_eq!(f["type"], "Feature");
        let p = &f["properties"];
        assert_eq!(
            p["sign_name"],
            e.sign_name.as_str(),
            "JSON keeps the text as is"
        );
        assert_eq!(p["list_type"], e.list_type.as_str());
        assert!(p.get("lng").is_none() && p.get("lat").is_none());
        match f["geometry"].as_object() {
            Some(g) => {
                assert_eq!(g["type"], "Point");
                let c = g["coordinates"].as_array().unwrap();
                assert!(close(c[0].as_f64(), e.lng), "longitude first");
                assert!(close(c[1].as_f64(), e.lat));
            }
            None => assert!(f["geometry"].is_null()),
        }
    }
    let nulls = features.iter().filter(|f| f["geometry"].is_null()).count();
    assert_eq!(
        nulls, 2,
        "the entry without a point and the one out of range"
    );
    assert_eq!(features[7]["properties"]["revocation"]["on"], "2026-11-20");
}

#[test]
fn json_has_meta_and_every_entry() {
    let v: serde_json::Value = serde_json::from_slice(&json_bytes()).unwrap();
    assert_eq!(v["meta"]["issue"]["revision"], 2);
    assert!(v["meta"]["disclaimer"].as_str().unwrap().contains("检查时"));
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), entries().len());
    let back: Vec<ExportEntry> = serde_json::from_value(v["items"].clone()).unwrap();
    for (mut b, e) in back.into_iter().zip(entries()) {
        assert!(close(b.lng, e.lng) && close(b.lat, e.lat));
        (b.lng, b.lat) = (e.lng, e.lat);
        assert_eq!(b, e, "JSON round-trips the rows");
    }
}

#[test]
fn lives_zip_has_the_five_files_and_no_contact_data() {
    let mut zip = zip::ZipArchive::new(Cursor::new(lives_bytes())).unwrap();
    let mut names: Vec<&str> = zip.file_names().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "businesses.csv",
            "feed_info.csv",
            "inspections.csv",
            "legend.csv",
            "violations.csv"
        ]
    );
    let mut file = |name: &str| {
        let mut b = Vec::new();
        zip.by_name(name).unwrap().read_to_end(&mut b).unwrap();
        assert!(
            !b.starts_with(b"\xEF\xBB\xBF"),
            "{name}: no BOM in the feed"
        );
        read_csv(&b)
    };
    let es = entries();
    let businesses = file("businesses.csv");
    assert_eq!(
        businesses[0],
        [
            "business_id",
            "name",
            "address",
            "city",
            "state",
            "postal_code",
            "latitude",
            "longitude",
            "phone_number"
        ]
    );
    assert_eq!(businesses.len(), es.len() + 1);
    for (b, e) in businesses[1..].iter().zip(&es) {
        assert_eq!(b[0], e.establishment_id);
        assert_eq!(b[1], neutralise(&e.sign_name));
        assert_eq!((b[3].as_str(), b[4].as_str()), ("宝坻区", "天津市"));
        assert_eq!(b[8], "", "no phone, ever");
    }
    assert_eq!(businesses[1][6], "39.717");
    assert_eq!(businesses[1][7], "117.3091");
    let inspections = file("inspections.csv");
    assert_eq!(
        inspections[0],
        ["business_id", "score", "date", "description", "type"]
    );
    assert_eq!(inspections.len(), es.len() + 1);
    assert_eq!(inspections[1][1..], ["100", "20261012", "符合", "routine"]);
    assert_eq!(inspections[9][1..], ["40", "20261012", "不符合", "routine"]);
    let violations = file("violations.csv");
    assert_eq!(
        violations[0],
        ["business_id", "date", "code", "description"]
    );
    assert_eq!(violations.len(), 1 + 4 * 2);
    assert_eq!(violations[1][2..], ["4.1", "'=未按要求贮存食品, \"冷藏\""]);
    let feed_info = file("feed_info.csv");
    assert_eq!(feed_info[1][0], "20261105");
    assert_eq!(feed_info[1][2], "天津市宝坻区市场监督管理局");
    let legend = file("legend.csv");
    assert_eq!(legend.len(), 4);
    assert_eq!(legend[1][..2], ["90", "100"]);
    assert!(legend[1][2].starts_with("符合"));
}

#[test]
fn lives_refuses_a_business_after_the_inspections() {
    let mut w = LivesWriter::new(Vec::new(), feed()).unwrap();
    w.inspection(&inspections()[0]).unwrap();
    assert!(w.business(&(&entries()[0]).into()).is_err());
}

/// The read side's shape: rows from an async stream, pulled on the blocking writer thread,
/// bytes out through the channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_row_stream_pipes_through_the_channel() {
    use futures::StreamExt;
    let rows = futures::stream::iter(entries());
    let handle = tokio::runtime::Handle::current();
    let mut rx = stream::spawn_writer(move |out| {
        let mut rows = Box::pin(rows);
        let mut w = EntryCsv::new(out)?;
        while let Some(e) = handle.block_on(rows.next()) {
            w.entry(&e)?;
        }
        w.finish()?;
        Ok(())
    });
    let mut all = Vec::new();
    while let Some(chunk) = rx.recv().await {
        all.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(all, csv_bytes());
}

/// Writes every format into $FOODCHECK_EXPORT_FIXTURES_DIR (default target/export-fixtures)
/// for tests/clients/exports/check.py.
#[test]
fn write_fixtures() {
    let dir = std::env::var("FOODCHECK_EXPORT_FIXTURES_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/target/export-fixtures").into());
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in [
        ("entries.csv", csv_bytes()),
        ("issue.xlsx", xlsx_bytes()),
        ("issue.geojson", geojson_bytes()),
        ("issue.json", json_bytes()),
        ("lives.zip", lives_bytes()),
    ] {
        assert!(!bytes.is_empty());
        std::fs::write(format!("{dir}/{name}"), bytes).unwrap();
    }
    // What the Python check compares against.
    let expected = serde_json::json!({
        "formulas": FORMULAS,
        "entries": entries(),
        "headers": ENTRY_HEADERS,
    });
    std::fs::write(format!("{dir}/expected.json"), expected.to_string()).unwrap();
}
