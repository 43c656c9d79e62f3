//! The `percore-bench` program: flags in, run, table out, files written. The binary's
//! `main` only calls [`main`].

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::args::{Command, Config, parse_args, usage};
use super::hdr_text::percentile_text;
use super::report::{json, per_target_path, summary_text, timeline_csv};
use super::run::{Report, run};
use super::signal::install_sigint_flag;
use super::svg::plot;

/// Exit status for a usage mistake.
pub const EXIT_USAGE: i32 = 2;
/// Exit status when the run failed (a target unreachable, a file not written).
pub const EXIT_FAILED: i32 = 1;
/// Exit status after Ctrl-C (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: i32 = 130;

/// Runs the program with the arguments after its name; returns the exit status.
pub fn main<I: IntoIterator<Item = String>>(args: I) -> i32 {
    let cfg = match parse_args(args) {
        Ok(Command::Help) => {
            print!("{}", usage());
            return 0;
        }
        Ok(Command::Run(cfg)) => cfg,
        Err(e) => {
            eprintln!("percore-bench: {e}\n(see percore-bench --help)");
            return EXIT_USAGE;
        }
    };
    let stop = match install_sigint_flag() {
        Ok(flag) => flag,
        Err(e) => {
            eprintln!("percore-bench: cannot install the Ctrl-C handler: {e}");
            return EXIT_FAILED;
        }
    };
    let mut stderr = io::stderr();
    let mut sink = io::sink();
    let progress: &mut dyn Write = if cfg.quiet { &mut sink } else { &mut stderr };
    let report = match run(&cfg, stop, progress) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("percore-bench: {e}");
            return EXIT_FAILED;
        }
    };
    print!("{}", summary_text(&cfg, &report));
    let _ = io::stdout().flush();
    let mut status = 0;
    if !report.phases.is_empty() {
        match write_outputs(&cfg, &report) {
            Ok(paths) => {
                for p in paths {
                    eprintln!("wrote {}", p.display());
                }
            }
            Err(e) => {
                eprintln!("percore-bench: {e}");
                status = EXIT_FAILED;
            }
        }
    }
    if report.failure.is_some() {
        status = EXIT_FAILED;
    } else if report.interrupted && status == 0 {
        status = EXIT_INTERRUPTED;
    }
    status
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Writes `--hdr-out`, `--timeline-out`, `--json-out` and `--plot`; returns the paths.
pub fn write_outputs(cfg: &Config, report: &Report) -> Result<Vec<PathBuf>, String> {
    let mut written = Vec::new();
    if let Some(path) = &cfg.hdr_out {
        for t in &report.targets {
            let p = if report.targets.len() == 1 {
                path.clone()
            } else {
                per_target_path(path, &t.target.name)
            };
            write_file(&p, &percentile_text(&t.hist))?;
            written.push(p);
        }
    }
    if let Some(path) = &cfg.timeline_out {
        write_file(path, &timeline_csv(report))?;
        written.push(path.clone());
    }
    if let Some(path) = &cfg.json_out {
        write_file(path, &json(cfg, report))?;
        written.push(path.clone());
    }
    if let Some(path) = &cfg.plot {
        write_file(path, &plot(cfg, report))?;
        written.push(path.clone());
    }
    Ok(written)
}
