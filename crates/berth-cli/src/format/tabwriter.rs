//! Go's `text/tabwriter` as docker configures it for tables (min width 10,
//! padding 3, spaces, no flags): cells end at `\t`; a column is as wide as
//! its widest cell in a block of consecutive lines that have that column.

use unicode_width::UnicodeWidthStr;

struct Cell {
    text: String,
    width: usize,
}

pub struct TabWriter {
    minwidth: usize,
    padding: usize,
    lines: Vec<Vec<Cell>>,
    cell: String,
    widths: Vec<usize>,
    out: String,
}

impl Default for TabWriter {
    fn default() -> Self {
        TabWriter::new(10, 3)
    }
}

impl TabWriter {
    pub fn new(minwidth: usize, padding: usize) -> Self {
        TabWriter { minwidth, padding, lines: vec![Vec::new()], cell: String::new(), widths: Vec::new(), out: String::new() }
    }

    pub fn write(&mut self, s: &str) {
        for ch in s.chars() {
            match ch {
                '\t' | '\n' => {
                    let n = self.terminate_cell();
                    if ch == '\n' {
                        self.lines.push(Vec::new());
                        if n == 1 {
                            self.flush_lines();
                        }
                    }
                }
                _ => self.cell.push(ch),
            }
        }
    }

    /// Flush what is buffered and return all output so far.
    pub fn finish(mut self) -> String {
        if !self.cell.is_empty() {
            self.terminate_cell();
        }
        self.flush_lines();
        self.out
    }

    fn terminate_cell(&mut self) -> usize {
        let text = std::mem::take(&mut self.cell);
        let width = UnicodeWidthStr::width(text.as_str());
        let line = self.lines.last_mut().expect("tabwriter always has a line");
        line.push(Cell { text, width });
        line.len()
    }

    fn flush_lines(&mut self) {
        let n = self.lines.len();
        self.format(0, n);
        self.lines.clear();
        self.lines.push(Vec::new());
        self.widths.clear();
    }

    fn format(&mut self, mut line0: usize, line1: usize) {
        let column = self.widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= self.lines[this].len() {
                this += 1;
                continue;
            }
            self.write_lines(line0, this);
            line0 = this;
            let mut width = self.minwidth;
            while this < line1 {
                let line = &self.lines[this];
                if column + 1 >= line.len() {
                    break;
                }
                width = width.max(line[column].width + self.padding);
                this += 1;
            }
            self.widths.push(width);
            self.format(line0, this);
            self.widths.pop();
            line0 = this;
            this += 1;
        }
        self.write_lines(line0, line1);
    }

    fn write_lines(&mut self, line0: usize, line1: usize) {
        for i in line0..line1 {
            for (j, c) in self.lines[i].iter().enumerate() {
                self.out.push_str(&c.text);
                if j < self.widths.len() {
                    for _ in c.width..self.widths[j] {
                        self.out.push(' ');
                    }
                }
            }
            if i + 1 != self.lines.len() {
                self.out.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_padded_to_the_widest_cell_plus_three() {
        let mut tw = TabWriter::default();
        tw.write("CONTAINER ID\tIMAGE\tNAMES\n");
        tw.write("abc\tbusybox:latest\tx\n");
        assert_eq!(tw.finish(), "CONTAINER ID   IMAGE            NAMES\nabc            busybox:latest   x\n");
    }

    #[test]
    fn narrow_columns_get_the_minimum_width() {
        let mut tw = TabWriter::default();
        tw.write("A\tB\n1\t2\n");
        assert_eq!(tw.finish(), "A         B\n1         2\n");
    }

    #[test]
    fn a_line_without_tabs_ends_the_block() {
        let mut tw = TabWriter::default();
        tw.write("A\tB\nplain line\nlonger cell here\tC\n");
        assert_eq!(tw.finish(), "A         B\nplain line\nlonger cell here   C\n");
    }

    #[test]
    fn wide_characters_count_twice() {
        let mut tw = TabWriter::default();
        tw.write("名前名前名前\tX\nab\tY\n");
        assert_eq!(tw.finish(), "名前名前名前   X\nab             Y\n");
    }

    #[test]
    fn trailing_text_without_newline_is_kept() {
        let mut tw = TabWriter::default();
        tw.write("A\tB");
        assert_eq!(tw.finish(), "A         B");
    }
}
