//! `--report PATH`: the kernel prints its probe report as JSON between two
//! marker lines at the end of a run; this module cuts it out of the console
//! transcript so xtask can write it to a file.

/// The line the kernel prints before the JSON.
pub const BEGIN: &str = "report-json-begin";
/// The line the kernel prints after the JSON.
pub const END: &str = "report-json-end";

/// The JSON between the markers, if the transcript has a complete report.
pub fn extract(transcript: &str) -> Option<String> {
    let mut lines = transcript.lines().map(|line| line.trim_end_matches('\r'));
    lines.by_ref().find(|line| *line == BEGIN)?;
    let mut json = String::new();
    for line in lines {
        if line == END {
            return Some(json);
        }
        json.push_str(line);
        json.push('\n');
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_between_the_markers_is_returned() {
        let transcript = "boot\r\nreport-json-begin\r\n{\r\n  \"a\": 1\r\n}\r\nreport-json-end\r\npower off\r\n";
        assert_eq!(extract(transcript).as_deref(), Some("{\n  \"a\": 1\n}\n"));
    }

    #[test]
    fn a_cut_off_report_is_none() {
        assert_eq!(extract("report-json-begin\n{\n"), None);
        assert_eq!(extract("no report here\n"), None);
    }
}
