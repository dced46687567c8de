//! Plain-text tables with columns sized to their contents: numbers right-aligned, text left.

/// A table under construction.
pub struct Table {
    header: Vec<String>,
    /// `true` for right-aligned (numeric) columns.
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
    /// Indices of rows preceded by a rule line (e.g. a total).
    rules: Vec<usize>,
}

impl Table {
    /// Columns whose name starts with `>` are right-aligned (the `>` is not shown).
    pub fn new(columns: &[&str]) -> Table {
        Table {
            header: columns.iter().map(|c| c.trim_start_matches('>').to_string()).collect(),
            right: columns.iter().map(|c| c.starts_with('>')).collect(),
            rows: Vec::new(),
            rules: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// A row set off by a rule line above it.
    pub fn total_row(&mut self, cells: Vec<String>) {
        self.rules.push(self.rows.len());
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Renders with two spaces before every line and between columns.
    pub fn render(&self) -> String {
        let mut width: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                if let Some(w) = width.get_mut(i) {
                    *w = (*w).max(c.chars().count());
                }
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::from(" ");
            for (i, w) in width.iter().enumerate() {
                let c = cells.get(i).map_or("", String::as_str);
                if self.right[i] {
                    s.push_str(&format!(" {c:>w$}"));
                } else {
                    s.push_str(&format!(" {c:<w$}"));
                }
                s.push(' ');
            }
            s.truncate(s.trim_end().len());
            s.push('\n');
            s
        };
        let mut out = line(&self.header);
        let total: usize = width.iter().map(|w| w + 2).sum();
        for (i, r) in self.rows.iter().enumerate() {
            if self.rules.contains(&i) {
                out.push_str(&format!("  {}\n", "-".repeat(total.saturating_sub(2))));
            }
            out.push_str(&line(r));
        }
        out
    }
}

/// A ratio as a percentage with one decimal, `-` when undefined.
pub fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{:.1}%", x * 100.0))
}

/// An optional count, `-` when absent.
pub fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_string(), |x| x.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns() {
        let mut t = Table::new(&["name", ">n"]);
        t.row(vec!["a".into(), "1".into()]);
        t.row(vec!["longer".into(), "100".into()]);
        t.total_row(vec!["total".into(), "101".into()]);
        assert_eq!(t.render(), "  name      n\n  a         1\n  longer  100\n  -----------\n  total   101\n");
        assert_eq!((pct(Some(0.5)), pct(None), opt(Some(3)), opt(None)), ("50.0%".into(), "-".into(), "3".into(), "-".into()));
    }
}
