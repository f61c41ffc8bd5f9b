//! The terminal table: aligned columns, long values cut, levels coloured when asked.

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};
use trailhound_finding::{Finding, Level};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::escape::terminal;
use crate::format::Options;

const COLUMNS: [&str; 8] = [
    "TIME",
    "LEVEL",
    "RULE",
    "EVENT",
    "PRINCIPAL",
    "SOURCE IP",
    "ACCESS KEY",
    "FROM",
];

/// The FROM column: where the call came from, and what baselines found new.
fn from(f: &Finding) -> String {
    match (f.origin(), f.novelty()) {
        (Some(origin), Some(new)) => format!("{origin} [{new}]"),
        (Some(origin), None) => origin,
        (None, Some(new)) => format!("[{new}]"),
        (None, None) => "-".to_string(),
    }
}

pub(crate) fn write(out: &mut dyn Write, findings: &[Finding], options: &Options) -> io::Result<()> {
    if findings.is_empty() {
        return Ok(());
    }
    // FROM only when some finding has something to say there (GeoIP, AWS ranges, baselines).
    let with_from = findings.iter().any(|f| f.origin().is_some() || f.novelty().is_some());
    let columns = if with_from { &COLUMNS[..] } else { &COLUMNS[..7] };
    let rows: Vec<Vec<String>> = findings
        .iter()
        .map(|f| {
            let opt = |v: &Option<String>| {
                v.as_deref()
                    .map(|s| cut(&terminal(s), options.max_width))
                    .unwrap_or_else(|| "-".into())
            };
            [
                cut(&terminal(&f.event_time), options.max_width),
                f.level.to_string(),
                cut(&terminal(&f.rule_id), options.max_width),
                // Correlation and grouped findings stand for several events.
                match (&f.correlation, &f.group) {
                    (Some(c), _) => cut(
                        &format!("{} (x{})", terminal(&f.event_name), c.events),
                        options.max_width,
                    ),
                    (None, Some(g)) if g.count > 1 => cut(
                        &format!("{} (x{})", terminal(&f.event_name), g.count),
                        options.max_width,
                    ),
                    _ => cut(&terminal(&f.what()), options.max_width),
                },
                opt(&f.principal_arn),
                opt(&f.source_ip),
                opt(&f.access_key_id),
                cut(&terminal(&from(f)), options.max_width),
            ]
            .into_iter()
            .take(columns.len())
            .collect()
        })
        .collect();
    let mut widths: Vec<usize> = columns.iter().map(|c| c.len()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.width());
        }
    }
    let header: Vec<String> = columns.iter().zip(&widths).map(|(c, w)| pad(c, *w)).collect();
    let bold = if options.color {
        Style::new().bold()
    } else {
        Style::new()
    };
    writeln!(out, "{bold}{}{bold:#}", header.join("  ").trim_end())?;
    for (row, finding) in rows.iter().zip(findings) {
        let style = if options.color {
            level_style(finding.level)
        } else {
            Style::new()
        };
        let mut line = String::new();
        for (index, (cell, &width)) in row.iter().zip(&widths).enumerate() {
            if index > 0 {
                line.push_str("  ");
            }
            if index == 1 {
                line.push_str(&format!("{style}{}{style:#}", pad(cell, width)));
            } else {
                line.push_str(&pad(cell, width));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn level_style(level: Level) -> Style {
    match level {
        Level::Critical => Style::new().bold().fg_color(Some(AnsiColor::Red.into())),
        Level::High => Style::new().fg_color(Some(AnsiColor::Red.into())),
        Level::Medium => Style::new().fg_color(Some(AnsiColor::Yellow.into())),
        Level::Low => Style::new().fg_color(Some(AnsiColor::Cyan.into())),
        Level::Informational => Style::new().dimmed(),
    }
}

fn pad(cell: &str, width: usize) -> String {
    let fill = width.saturating_sub(cell.width());
    format!("{cell}{}", " ".repeat(fill))
}

/// Cuts `text` to `max` columns, marking the cut with `…`.
fn cut(text: &str, max: usize) -> String {
    if max == 0 || text.width() <= max {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > max {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutting_respects_display_width() {
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
        assert_eq!(cut("日本語テキスト", 5), "日本…");
        assert_eq!(cut("abcdef", 0), "abcdef");
    }
}
