//! The food category tree (食品分类) of the 实施细则 as data: four levels (大类 → 亚类 → 品种 →
//! 细类), loaded by admins from a CSV (UTF-8 with or without BOM, or GBK/GB18030) or XLSX file.
//!
//! Columns (Chinese or English headers; `*` and `（必填）` markers ignored): 分类编码 `code`,
//! 级别 `level` (1–4), 分类名称 `name` are required; 上级编码 `parent_code` (empty for level 1)
//! and 微生物 `microbiological` (是/否, blank = not stated) are optional. The file-level guards
//! (format sniffing, decoding, XLSX bounds) are the registry import's.
//!
//! [`check_tree`] is the rule over a whole file and the stored tree: a level-1 row has no
//! parent; any other row's parent exists (in the file or stored) and is exactly one level up;
//! a code appears once in a file and keeps its stored level. Every problem names its row.

use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::establishment::import::{
    read_rows, render_number, strip_header, unwrap_formula_text, Cell, Format, ImportError,
    RowProblem, RowSink, MAX_COLUMNS, MAX_HEADER_SEARCH,
};

/// Most rows in one import (the 实施细则's tree has a few hundred).
pub const MAX_ROWS: usize = 20_000;
/// Longest code, in characters.
pub const MAX_CODE_CHARS: usize = 32;
/// Longest name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// One category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Category {
    /// Unique code (letters, digits, `.`, `-`, `_`; 1–32 characters).
    pub code: String,
    /// 1 (食品大类) to 4 (食品细类).
    pub level: u8,
    /// The category one level up; `None` for level 1.
    pub parent_code: Option<String>,
    pub name: String,
    /// Whether the category is tested for microbiological items (`None`: not stated).
    pub microbiological: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Code,
    Level,
    Parent,
    Name,
    Microbiological,
}

const COLUMNS: [(Col, &str, &[&str]); 5] = [
    (Col::Code, "code", &["分类编码", "编码", "分类代码", "代码"]),
    (Col::Level, "level", &["级别", "层级", "分类级别"]),
    (
        Col::Parent,
        "parent_code",
        &["上级编码", "上级分类编码", "父级编码", "上级代码"],
    ),
    (Col::Name, "name", &["分类名称", "名称", "类别名称"]),
    (
        Col::Microbiological,
        "microbiological",
        &["微生物", "微生物项目", "是否检验微生物"],
    ),
];

const REQUIRED: [Col; 3] = [Col::Code, Col::Level, Col::Name];

fn name_of(col: Col) -> &'static str {
    COLUMNS.iter().find(|c| c.0 == col).map_or("", |c| c.1)
}

fn match_column(text: &str) -> Option<Col> {
    let s = strip_header(text);
    let en = s.to_ascii_lowercase();
    COLUMNS
        .iter()
        .find(|(_, name, zh)| zh.contains(&s) || *name == en)
        .map(|c| c.0)
}

/// One data row: the category when its cells could be read, with its problems.
#[derive(Debug, Clone)]
pub struct ParsedRow {
    /// Spreadsheet row number as the admin sees it.
    pub row: u32,
    pub category: Option<Category>,
    pub problems: Vec<RowProblem>,
}

/// A parsed file.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub format: Format,
    pub rows: Vec<ParsedRow>,
}

impl Parsed {
    pub fn problems(&self) -> Vec<RowProblem> {
        self.rows
            .iter()
            .flat_map(|r| r.problems.iter().cloned())
            .collect()
    }
}

struct Rows {
    max_rows: usize,
    seen_before_header: usize,
    header: Option<Vec<Option<(Col, String)>>>,
    rows: Vec<ParsedRow>,
}

fn cell_string(cell: Cell<'_>) -> Result<Option<String>, (&'static str, String)> {
    match cell {
        Cell::Empty => Ok(None),
        Cell::Text(s) => {
            let t = unwrap_formula_text(s.trim());
            Ok((!t.is_empty()).then(|| t.to_string()))
        }
        Cell::Int(i) => Ok(Some(i.to_string())),
        Cell::Number(f) => Ok(Some(render_number(f))),
        Cell::Bool(b) => Ok(Some(if b { "是" } else { "否" }.to_string())),
        Cell::Date => Err((
            "unexpected_date",
            "the spreadsheet turned this value into a date; format the cell as text and type it again"
                .to_string(),
        )),
        Cell::Error(e) => Err((
            "cell_error",
            format!("the cell shows the spreadsheet error {e}"),
        )),
    }
}

fn parse_yes_no(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "是" | "y" | "yes" | "true" | "1" | "√" => Some(true),
        "否" | "n" | "no" | "false" | "0" => Some(false),
        _ => None,
    }
}

fn good_code(s: &str) -> bool {
    (1..=MAX_CODE_CHARS).contains(&s.chars().count())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

impl Rows {
    fn feed<'c>(
        &mut self,
        row: u32,
        cells: impl Iterator<Item = (usize, Cell<'c>)>,
    ) -> Result<(), ImportError> {
        let Some(header) = &self.header else {
            return self.look_for_header(cells);
        };
        let mut text: [Option<String>; 5] = Default::default();
        let mut problems = Vec::new();
        let mut any = false;
        for (i, cell) in cells {
            let Some(Some((col, head))) = header.get(i) else {
                continue;
            };
            if cell.is_blank() {
                continue;
            }
            any = true;
            match cell_string(cell) {
                Ok(v) => text[*col as usize] = v,
                Err((code, message)) => problems.push(RowProblem {
                    row,
                    column: Some(head.clone()),
                    code: code.to_string(),
                    message,
                }),
            }
        }
        if !any {
            return Ok(());
        }
        if self.rows.len() >= self.max_rows {
            return Err(ImportError::TooManyRows(self.max_rows));
        }
        let head = |col: Col| {
            header
                .iter()
                .flatten()
                .find(|(c, _)| *c == col)
                .map(|(_, t)| t.clone())
        };
        let mut problem = |col: Col, code: &str, message: String| {
            problems.push(RowProblem {
                row,
                column: head(col),
                code: code.to_string(),
                message,
            })
        };
        let [code, level, parent, name, micro] = text;
        let code = code.map(|c| crate::establishment::codes::normalise_code(&c));
        let parent = parent.map(|c| crate::establishment::codes::normalise_code(&c));
        for (col, v) in [(Col::Code, &code), (Col::Level, &level), (Col::Name, &name)] {
            if v.is_none() {
                problem(col, "required", format!("{} is required", name_of(col)));
            }
        }
        for (col, v) in [(Col::Code, &code), (Col::Parent, &parent)] {
            if let Some(c) = v.as_deref().filter(|c| !good_code(c)) {
                problem(
                    col,
                    "invalid_code",
                    format!("{c:?} is not a category code (1 to {MAX_CODE_CHARS} letters, digits, '.', '-' or '_')"),
                );
            }
        }
        let level_n = level.as_deref().map(|l| l.trim().parse::<u8>());
        if let Some(l) = &level {
            if !matches!(level_n, Some(Ok(1..=4))) {
                problem(
                    Col::Level,
                    "invalid_level",
                    format!("level {l:?} is not 1, 2, 3 or 4"),
                );
            }
        }
        if let Some(n) = &name {
            if n.chars().count() > MAX_NAME_CHARS {
                problem(
                    Col::Name,
                    "too_long",
                    format!("name is longer than {MAX_NAME_CHARS} characters"),
                );
            } else if let Some(c) = crate::text::find_forbidden(n) {
                problem(
                    Col::Name,
                    "forbidden_character",
                    format!(
                        "name contains the control character {}",
                        crate::text::describe(c)
                    ),
                );
            }
        }
        let microbiological = match micro.as_deref().map(parse_yes_no) {
            Some(Some(b)) => Some(b),
            Some(None) => {
                problem(
                    Col::Microbiological,
                    "invalid_yes_no",
                    format!("{:?} is not 是 or 否", micro.unwrap_or_default()),
                );
                None
            }
            None => None,
        };
        let category = match (code, level_n, name) {
            (Some(code), Some(Ok(level)), Some(name)) if problems.is_empty() => Some(Category {
                code,
                level,
                parent_code: parent,
                name: name.trim().to_string(),
                microbiological,
            }),
            _ => None,
        };
        self.rows.push(ParsedRow {
            row,
            category,
            problems,
        });
        Ok(())
    }

    fn look_for_header<'c>(
        &mut self,
        cells: impl Iterator<Item = (usize, Cell<'c>)>,
    ) -> Result<(), ImportError> {
        let texts: Vec<(usize, String)> = cells
            .filter(|(i, c)| *i < MAX_COLUMNS && !c.is_blank())
            .filter_map(|(i, c)| Some((i, cell_string(c).ok()??)))
            .collect();
        if texts.is_empty() {
            return Ok(());
        }
        if texts
            .iter()
            .filter(|(_, t)| match_column(t).is_some())
            .count()
            < 2
        {
            self.seen_before_header += 1;
            if self.seen_before_header >= MAX_HEADER_SEARCH {
                return Err(missing(&[]));
            }
            return Ok(());
        }
        let width = texts.iter().map(|(i, _)| i + 1).max().unwrap_or(0);
        let mut cols = vec![None; width];
        let mut found: Vec<Col> = Vec::new();
        for (i, text) in texts {
            if let Some(col) = match_column(&text) {
                if found.contains(&col) {
                    return Err(ImportError::DuplicateColumn(text));
                }
                found.push(col);
                cols[i] = Some((col, text));
            }
        }
        if REQUIRED.iter().any(|c| !found.contains(c)) {
            return Err(missing(&found));
        }
        self.header = Some(cols);
        Ok(())
    }
}

fn missing(found: &[Col]) -> ImportError {
    ImportError::MissingColumns(
        REQUIRED
            .iter()
            .filter(|c| !found.contains(c))
            .map(|c| name_of(*c).to_string())
            .collect(),
    )
}

/// Parses a category file (see the module doc).
pub fn parse(bytes: &[u8], max_rows: usize) -> Result<Parsed, ImportError> {
    let mut rows = Rows {
        max_rows,
        seen_before_header: 0,
        header: None,
        rows: Vec::new(),
    };
    let format = read_rows(bytes, &mut rows)?;
    if rows.header.is_none() {
        return Err(if rows.seen_before_header == 0 {
            ImportError::Empty
        } else {
            missing(&[])
        });
    }
    if rows.rows.is_empty() {
        return Err(ImportError::NoRows);
    }
    Ok(Parsed {
        format,
        rows: rows.rows,
    })
}

// Header search and cell conversion are this file's; reading the file is shared.
impl RowSink for Rows {
    fn row<'c>(
        &mut self,
        row: u32,
        cells: impl Iterator<Item = (usize, Cell<'c>)>,
        _width: Option<usize>,
    ) -> Result<(), ImportError> {
        self.feed(row, cells)
    }
}

/// The tree rule (see the module doc) over the file's rows and the stored tree (`stored`: code
/// → level). Rows whose cells could not be read are skipped (they have problems already).
pub fn check_tree(rows: &[ParsedRow], stored: &HashMap<String, u8>) -> Vec<RowProblem> {
    let mut in_file: HashMap<&str, (u32, u8)> = HashMap::new();
    let mut problems = Vec::new();
    let problem = |row: u32, column: &str, code: &str, message: String| RowProblem {
        row,
        column: Some(column.to_string()),
        code: code.to_string(),
        message,
    };
    for r in rows {
        let Some(c) = &r.category else { continue };
        if let Some((first, _)) = in_file.get(c.code.as_str()) {
            problems.push(problem(
                r.row,
                "code",
                "duplicate_code",
                format!("category {} is already in row {first}", c.code),
            ));
            continue;
        }
        in_file.insert(&c.code, (r.row, c.level));
        if let Some(&was) = stored.get(&c.code).filter(|l| **l != c.level) {
            problems.push(problem(
                r.row,
                "level",
                "level_inconsistent",
                format!(
                    "category {} is stored at level {was}; its level cannot change to {}",
                    c.code, c.level
                ),
            ));
        }
    }
    for r in rows {
        let Some(c) = &r.category else { continue };
        match (c.level, &c.parent_code) {
            (1, None) => {}
            (1, Some(p)) => problems.push(problem(
                r.row,
                "parent_code",
                "level_inconsistent",
                format!(
                    "category {} is level 1 (大类) and cannot have a parent ({p})",
                    c.code
                ),
            )),
            (_, None) => problems.push(problem(
                r.row,
                "parent_code",
                "parent_missing",
                format!(
                    "category {} is level {} and needs its parent",
                    c.code, c.level
                ),
            )),
            (level, Some(p)) => {
                let parent_level = in_file
                    .get(p.as_str())
                    .map(|(_, l)| *l)
                    .or_else(|| stored.get(p).copied());
                match parent_level {
                    None => problems.push(problem(
                        r.row,
                        "parent_code",
                        "parent_missing",
                        format!(
                            "the parent {p} of category {} is neither in the file nor stored",
                            c.code
                        ),
                    )),
                    Some(pl) if pl + 1 != level => problems.push(problem(
                        r.row,
                        "level",
                        "level_inconsistent",
                        format!(
                            "category {} is level {level} but its parent {p} is level {pl} (must be {})",
                            c.code,
                            level - 1
                        ),
                    )),
                    Some(_) => {}
                }
            }
        }
    }
    problems.sort_by_key(|p| p.row);
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(s: &str) -> Parsed {
        parse(s.as_bytes(), MAX_ROWS).unwrap()
    }

    fn codes(p: &[RowProblem]) -> Vec<(u32, &str)> {
        p.iter().map(|p| (p.row, p.code.as_str())).collect()
    }

    #[test]
    fn reads_chinese_headers_and_checks_the_tree() {
        let p = csv("分类编码,级别,上级编码,分类名称,微生物\n\
             01,1,,粮食加工品,\n\
             0101,2,01,小麦粉,否\n\
             010101,3,0101,通用小麦粉,是\n");
        assert!(p.problems().is_empty(), "{:?}", p.problems());
        assert_eq!(
            p.rows[2].category.as_ref().unwrap().microbiological,
            Some(true)
        );
        assert_eq!(p.rows[0].category.as_ref().unwrap().microbiological, None);
        assert!(check_tree(&p.rows, &HashMap::new()).is_empty());
    }

    #[test]
    fn a_missing_parent_or_a_wrong_level_is_refused_with_its_row() {
        let p = csv("code,level,parent_code,name\n\
             01,1,,粮食加工品\n\
             0101,3,01,小麦粉\n\
             0201,2,02,食用油\n\
             03,1,01,错的大类\n\
             0102,2,,无上级\n");
        let problems = check_tree(&p.rows, &HashMap::new());
        assert_eq!(
            codes(&problems),
            vec![
                (3, "level_inconsistent"),
                (4, "parent_missing"),
                (5, "level_inconsistent"),
                (6, "parent_missing")
            ]
        );
    }

    #[test]
    fn a_stored_parent_counts_and_a_stored_level_cannot_change() {
        let p = csv("code,level,parent_code,name\n0101,2,01,小麦粉\n01,2,00,改级\n");
        let stored = HashMap::from([("01".to_string(), 1u8)]);
        let problems = check_tree(&p.rows, &stored);
        // Row 3 changes 01's level and names a missing parent; row 2's parent is now level 2.
        assert_eq!(
            codes(&problems),
            vec![
                (2, "level_inconsistent"),
                (3, "level_inconsistent"),
                (3, "parent_missing")
            ]
        );
        let ok = csv("code,level,parent_code,name\n0101,2,01,小麦粉\n");
        assert!(check_tree(&ok.rows, &stored).is_empty());
    }

    #[test]
    fn bad_cells_and_duplicates_are_row_problems() {
        let p = csv("code,level,name\n01,5,甲\n,1,乙\n02,1,丙\n02,1,丁\n");
        assert_eq!(
            codes(&p.problems()),
            vec![(2, "invalid_level"), (3, "required")]
        );
        assert_eq!(
            codes(&check_tree(&p.rows, &HashMap::new())),
            vec![(5, "duplicate_code")]
        );
        assert!(matches!(
            parse(b"code,name\n01,x\n", MAX_ROWS),
            Err(ImportError::MissingColumns(_))
        ));
    }
}
