//! `amon board` for people: the columns side by side, fitted to a width.
//!
//! Layouts, by the width each column gets:
//! - wide (≥ 28): one line per task, `SHORTID P<priority> Title…`;
//! - narrow (≥ 12): two lines per task, `SHORTID P<priority>` then the title;
//! - too narrow for five columns side by side: the columns one under the
//!   other, one line per task, at the full width.
//!
//! Titles are cut with `…`, by display width (wide characters count two).

use amon_proto::v1::{BoardColumn, Task, TaskStatus};

use crate::{
    enums,
    table::{pad, short_id, truncate},
};

/// Between two columns.
const SEPARATOR: &str = " │ ";
/// Where the header underline crosses a separator.
const CROSSING: &str = "─┼─";
/// Column width from which a task fits on one line.
const WIDE: usize = 28;
/// Narrowest column drawn side by side.
const NARROW: usize = 12;
/// Width used when the output is not a terminal and `$COLUMNS` is unset.
pub const DEFAULT_WIDTH: usize = 120;

/// `IN PROGRESS (3)` in `width` columns: the name is cut before the count.
fn heading(column: &BoardColumn, width: usize) -> String {
    let name = enums::display::<TaskStatus>(column.status)
        .replace('_', " ")
        .to_uppercase();
    // A column too large for one reply says so: `(500+)`.
    let more = if column.truncated { "+" } else { "" };
    let count = format!(" ({}{more})", column.tasks.len());
    let room = width.saturating_sub(count.len());
    if room == 0 {
        return truncate(&format!("{name}{count}"), width);
    }
    format!("{}{count}", truncate(&name, room))
}

fn priority(task: &Task) -> String {
    task.priority
        .map(|p| format!("P{p}"))
        .unwrap_or_else(|| "P-".to_string())
}

/// The title on one line: control characters (newlines, tabs) become spaces.
fn title(task: &Task) -> String {
    task.title
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn one_line(task: &Task, width: usize) -> String {
    truncate(
        &format!("{} {} {}", short_id(&task.id), priority(task), title(task)),
        width,
    )
}

/// The board drawn in `width` terminal columns.
pub fn render(columns: &[BoardColumn], width: usize) -> String {
    if columns.is_empty() {
        return "the board has no columns\n".to_string();
    }
    let count = columns.len();
    let separators = SEPARATOR.chars().count() * (count - 1);
    let column_width = width.saturating_sub(separators) / count;
    if column_width < NARROW {
        return stacked(columns, width.max(NARROW));
    }

    let cells: Vec<Vec<String>> = columns
        .iter()
        .map(|column| {
            let mut lines = vec![heading(column, column_width), "─".repeat(column_width)];
            for task in &column.tasks {
                if column_width >= WIDE {
                    lines.push(one_line(task, column_width));
                } else {
                    lines.push(truncate(
                        &format!("{} {}", short_id(&task.id), priority(task)),
                        column_width,
                    ));
                    lines.push(truncate(&format!("  {}", title(task)), column_width));
                }
            }
            lines
        })
        .collect();

    let height = cells.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = String::new();
    for row in 0..height {
        let separator = if row == 1 { CROSSING } else { SEPARATOR };
        let line = cells
            .iter()
            .map(|lines| {
                pad(
                    lines.get(row).map(String::as_str).unwrap_or(""),
                    column_width,
                )
            })
            .collect::<Vec<_>>()
            .join(separator);
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The columns one under the other.
fn stacked(columns: &[BoardColumn], width: usize) -> String {
    let mut out = String::new();
    for (index, column) in columns.iter().enumerate() {
        if index > 0 {
            out.push('\n');
        }
        out.push_str(&heading(column, width));
        out.push('\n');
        for task in &column.tasks {
            out.push_str("  ");
            out.push_str(&one_line(task, width.saturating_sub(2)));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use unicode_width::UnicodeWidthStr;

    use super::*;

    fn task(id: &str, priority: i32, title: &str) -> Task {
        Task {
            id: id.to_string(),
            priority: Some(priority),
            title: title.to_string(),
            ..Default::default()
        }
    }

    fn board() -> Vec<BoardColumn> {
        let column = |status: TaskStatus, tasks: Vec<Task>| BoardColumn {
            status: status as i32,
            tasks,
            truncated: false,
        };
        vec![
            column(
                TaskStatus::Todo,
                vec![
                    task("aaaaaaaa-1111", 1, "Write the design document for the CLI"),
                    task("bbbbbbbb-2222", 3, "Ship it"),
                ],
            ),
            column(
                TaskStatus::InProgress,
                vec![task("cccccccc-3333", 2, "Fix login")],
            ),
            column(TaskStatus::Blocked, vec![]),
            column(
                TaskStatus::Done,
                vec![task("dddddddd-4444", 5, "日本語のタスク名前")],
            ),
            column(TaskStatus::Cancelled, vec![]),
        ]
    }

    #[test]
    fn wide_board_puts_columns_side_by_side() {
        let text = render(&board(), 160);
        let lines: Vec<_> = text.lines().collect();
        // Heading, rule, two tasks in the longest column.
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("TODO (2)"), "{text}");
        assert!(lines[0].contains("│ IN PROGRESS (1)"), "{text}");
        assert!(lines[0].contains("│ CANCELLED (0)"), "{text}");
        assert!(lines[1].contains("─┼─"), "{text}");
        assert!(
            lines[2].starts_with("aaaaaaaa P1 Write the design"),
            "{text}"
        );
        assert!(lines[2].contains("│ cccccccc P2 Fix login"), "{text}");
        assert!(lines[2].contains("dddddddd P5 日本語"), "{text}");
        assert!(lines[3].starts_with("bbbbbbbb P3 Ship it"), "{text}");
        for line in &lines {
            assert!(line.width() <= 160, "{line}");
        }
    }

    #[test]
    fn titles_are_cut_to_the_column() {
        // 5 columns in 160: (160 - 12) / 5 = 29 each.
        let text = render(&board(), 160);
        let first_task = text.lines().nth(2).unwrap();
        let cell = first_task.split(" │ ").next().unwrap();
        assert_eq!(cell.width(), 29, "{cell:?}");
        assert!(cell.ends_with('…'), "{cell:?}");
        assert_eq!(cell, "aaaaaaaa P1 Write the design…");
    }

    #[test]
    fn every_line_fits_the_width() {
        for width in [60, 80, 100, 120, 200] {
            let text = render(&board(), width);
            for line in text.lines() {
                assert!(line.width() <= width, "width {width}: {line:?}\n{text}");
            }
        }
    }

    #[test]
    fn narrow_board_uses_two_lines_per_task() {
        // (80 - 12) / 5 = 13 columns each.
        let text = render(&board(), 80);
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2 + 4, "{text}");
        assert!(lines[2].starts_with("aaaaaaaa P1"), "{text}");
        assert!(lines[3].starts_with("  Write the…"), "{text}");
        // Headings keep their count when the name is cut.
        assert!(lines[0].contains("│ IN PROGR… (1)"), "{text}");
        assert!(lines[4].starts_with("bbbbbbbb P3"), "{text}");
        assert!(lines[5].starts_with("  Ship it"), "{text}");
    }

    #[test]
    fn too_narrow_board_stacks_columns() {
        let text = render(&board(), 40);
        assert!(!text.contains('│'), "{text}");
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines[0], "TODO (2)");
        assert_eq!(lines[1], "  aaaaaaaa P1 Write the design document…");
        assert_eq!(lines[2], "  bbbbbbbb P3 Ship it");
        assert_eq!(lines[3], "");
        assert_eq!(lines[4], "IN PROGRESS (1)");
        for line in &lines {
            assert!(line.width() <= 40, "{line}");
        }
    }

    #[test]
    fn empty_board() {
        assert_eq!(render(&[], 100), "the board has no columns\n");
        let empty: Vec<_> = board()
            .into_iter()
            .map(|c| BoardColumn { tasks: vec![], ..c })
            .collect();
        let text = render(&empty, 100);
        assert_eq!(text.lines().count(), 2, "{text}");
    }
}
