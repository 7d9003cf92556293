#!/usr/bin/env python3
"""Reads foodcheck's export files with Python's own readers (csv, openpyxl, zipfile, json) and
checks them against expected.json, all written by `cargo test --test export_readers
write_fixtures` into one directory.

Usage: check.py DIR      Exit status 0 when every check passes, 1 on a failure, 2 on set-up.
"""
import csv
import io
import json
import sys
import zipfile

try:
    import openpyxl
except ImportError:
    print("openpyxl is missing: pip install openpyxl", file=sys.stderr)
    sys.exit(2)

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def neutralised(text):
    """The writers' rule (src/export/cell.rs), restated independently."""
    rest = text.lstrip(" \t\r\n")
    formula = rest.startswith(("=", "+", "-", "@")) or (
        len(rest) != len(text) and text.startswith(("\t", "\r"))
    )
    return "'" + text if formula else text


def lf(text):
    """XLSX cells keep line breaks as LF (src/export/xlsx.rs cell_text)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def main(d):
    exp = json.load(open(f"{d}/expected.json", encoding="utf-8"))
    entries, formulas, headers = exp["entries"], exp["formulas"], exp["headers"]

    # CSV: BOM, CRLF, RFC 4180, neutralised, Chinese intact.
    raw = open(f"{d}/entries.csv", "rb").read()
    check(raw.startswith(b"\xef\xbb\xbf"), "csv: UTF-8 BOM")
    check(raw.endswith(b"\r\n"), "csv: CRLF at the end")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    check(rows[0] == headers, f"csv: header {rows[0]}")
    check(len(rows) == len(entries) + 1, "csv: one row per entry")
    for row, e in zip(rows[1:], entries):
        check(row[3] == neutralised(e["sign_name"]), f"csv: 牌匾名称 {row[3]!r}")
        check(row[4] == e["licensed_name"], "csv: Chinese round-trips")
        check(row[11] == e["reason"], f"csv: quotes/commas/newlines {row[11]!r}")
    for row, f in zip(rows[1:], formulas):
        check(row[3] == "'" + f, f"csv: formula {f!r} neutralised -> {row[3]!r}")
    for row in rows[1:]:
        for cell in row:
            check(not cell.startswith(TRIGGERS) or _numeric(cell), f"csv: live formula {cell!r}")

    # XLSX: sheets, frozen header, widths, no formulas, neutralised text.
    wb = openpyxl.load_workbook(f"{d}/issue.xlsx")
    check(wb.sheetnames == ["红榜", "黑榜", "说明"], f"xlsx: sheets {wb.sheetnames}")
    for name, kind in (("红榜", "red"), ("黑榜", "black")):
        ws = wb[name]
        check(ws.freeze_panes == "A2", f"xlsx {name}: frozen header ({ws.freeze_panes})")
        check((ws.column_dimensions["F"].width or 0) >= 40, f"xlsx {name}: 经营地址 width")
        got = [[c.value for c in r] for r in ws.iter_rows()]
        check(got[0] == headers[1:], f"xlsx {name}: header")
        mine = [e for e in entries if e["list_type"] == kind]
        check(len(got) == len(mine) + 1, f"xlsx {name}: rows")
        for r, e in zip(got[1:], mine):
            check(r[2] == lf(neutralised(e["sign_name"])), f"xlsx {name}: 牌匾名称 {r[2]!r}")
            check(r[10] == lf(e["reason"]), f"xlsx {name}: 上榜理由 {r[10]!r}")
        for r in ws.iter_rows():
            for c in r:
                check(c.data_type != "f", f"xlsx {name}: formula cell {c.coordinate}")
                if isinstance(c.value, str):
                    check(not c.value.startswith(TRIGGERS + ("\n",)), f"xlsx {name}: {c.value!r}")
                    check("_x000D_" not in c.value, f"xlsx {name}: escaped CR {c.value!r}")
    notes = {r[0].value: r[1].value for r in wb["说明"].iter_rows()}
    for key in ("期号", "修订说明", "上榜标准", "声明", "开放许可"):
        check(notes.get(key), f"xlsx 说明: {key}")
    check("检查时" in (notes.get("声明") or ""), "xlsx 说明: disclaimer")

    # GeoJSON: RFC 7946 shape, [lng, lat], WGS-84 range, null geometry without a point.
    g = json.load(open(f"{d}/issue.geojson", encoding="utf-8"))
    check(g["type"] == "FeatureCollection", "geojson: collection")
    check(len(g["features"]) == len(entries), "geojson: one feature per entry")
    for f, e in zip(g["features"], entries):
        check(f["type"] == "Feature" and "properties" in f, "geojson: feature")
        geom = f["geometry"]
        lng, lat = e.get("lng"), e.get("lat")
        valid = lng is not None and lat is not None and -180 <= lng <= 180 and -90 <= lat <= 90
        if valid:
            check(geom == {"type": "Point", "coordinates": [lng, lat]}, f"geojson: {geom}")
        else:
            check(geom is None, f"geojson: null geometry for {lng},{lat}")
        check(f["properties"]["sign_name"] == e["sign_name"], "geojson: text as is")

    # JSON: meta + items, the rows exactly.
    j = json.load(open(f"{d}/issue.json", encoding="utf-8"))
    check(j["items"] == entries, "json: items are the entries")
    check("检查时" in j["meta"]["disclaimer"], "json: disclaimer")

    # LIVES: five files, no BOM, YYYYMMDD dates, no phone numbers.
    z = zipfile.ZipFile(f"{d}/lives.zip")
    check(z.testzip() is None, "lives: CRCs")
    names = sorted(z.namelist())
    want = ["businesses.csv", "feed_info.csv", "inspections.csv", "legend.csv", "violations.csv"]
    check(names == want, f"lives: files {names}")

    def table(name):
        b = z.read(name)
        check(not b.startswith(b"\xef\xbb\xbf"), f"lives {name}: no BOM")
        return list(csv.DictReader(io.StringIO(b.decode("utf-8"), newline="")))

    biz = table("businesses.csv")
    check(len(biz) == len(entries), "lives: one business per entry")
    for b, e in zip(biz, entries):
        check(b["business_id"] == e["establishment_id"], "lives: business_id")
        check(b["phone_number"] == "", "lives: no phone")
    insp = table("inspections.csv")
    for i in insp:
        check(len(i["date"]) == 8 and i["date"].isdigit(), f"lives: date {i['date']}")
        check(0 <= int(i["score"]) <= 100, "lives: score")
        check(i["type"] in ("routine", "followup"), "lives: type")
    viol = table("violations.csv")
    check(len(viol) > 0 and all(v["code"] for v in viol), "lives: violations")
    legend = table("legend.csv")
    check(len(legend) == 3, "lives: legend bands")
    for i in insp:
        band = [l for l in legend if int(l["minimum_score"]) <= int(i["score"]) <= int(l["maximum_score"])]
        check(len(band) == 1 and band[0]["description"].startswith(i["description"]), "lives: score band")
    feed = table("feed_info.csv")
    check(len(feed) == 1 and feed[0]["municipality_name"], "lives: feed_info")

    if failures:
        for f in failures:
            print("FAIL", f)
        return 1
    print(f"ok: csv, xlsx, geojson, json, lives checked in {d}")
    return 0


def _numeric(cell):
    try:
        float(cell)
        return True
    except ValueError:
        return False


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
