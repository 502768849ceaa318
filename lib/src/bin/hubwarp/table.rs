//! Plain-text tables for a terminal: a header, aligned columns, long cells
//! cut with an ellipsis, except in the last column, which holds what an
//! operator copies (dedup keys, message ids) and has the line's end to
//! itself. A table crate would bring styling and wrapping
//! this output does not need; `--json` is the format for scripts.

/// Cells longer than this are cut.
const MAX_CELL: usize = 80;

pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Self {
        Self {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self) -> String {
        let cut = |s: &str| -> String {
            let one_line = s.replace(['\n', '\r', '\t'], " ");
            if one_line.chars().count() > MAX_CELL {
                let mut c: String = one_line.chars().take(MAX_CELL - 1).collect();
                c.push('…');
                c
            } else {
                one_line
            }
        };
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                let last = r.len().saturating_sub(1);
                r.iter()
                    .enumerate()
                    .map(|(i, c)| {
                        if i == last {
                            c.replace('\n', " ")
                        } else {
                            cut(c)
                        }
                    })
                    .collect()
            })
            .collect();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for r in &rows {
            for (i, c) in r.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(c.chars().count());
                }
            }
        }
        let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
            let mut out = String::new();
            for (i, c) in cells.enumerate() {
                let w = widths.get(i).copied().unwrap_or(0);
                if i + 1 == widths.len() {
                    out.push_str(c);
                } else {
                    out.push_str(c);
                    out.push_str(&" ".repeat(w - c.chars().count() + 2));
                }
            }
            out.trim_end().to_string()
        };
        let mut out = line(&mut self.headers.iter().copied());
        out.push('\n');
        for r in &rows {
            out.push_str(&line(&mut r.iter().map(String::as_str)));
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_and_cuts() {
        let mut t = Table::new(&["ID", "VALUE"]);
        t.row(vec!["a".into(), "short".into()]);
        t.row(vec!["x".repeat(MAX_CELL + 10), "y".repeat(MAX_CELL + 10)]);
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], format!("ID{}VALUE", " ".repeat(MAX_CELL)));
        assert!(lines[1].starts_with("a ") && lines[1].ends_with(" short"));
        // Cut in the middle, whole at the end.
        assert!(lines[2].contains('…') && lines[2].ends_with(&"y".repeat(MAX_CELL + 10)));
    }
}
