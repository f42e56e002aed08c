//! The functions' logs: as the Lambda runtime's default subscriber sets them up
//! (`AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`, JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`), except
//! that other crates never log below DEBUG. At TRACE the Lambda runtime prints every raw
//! invocation event (`Authorization` headers and posted write keys included) and the AWS
//! SDK prints DynamoDB's response bodies (stored write keys included): TRACE is for this
//! service's own code only.
//!
//! These variables are the Lambda runtime's own (the template's `LoggingConfig`), read
//! here rather than in `config`: logging starts before the function's configuration is
//! read, and a level that does not parse falls back to INFO, as the runtime's own
//! subscriber does.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

/// The crates that are this service's own code: the library and the four functions.
const OWN_CRATES: [&str; 5] = ["shared", "export", "destinations", "test_event", "ingest"];

/// The filter of the configured level (`AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else INFO).
pub fn filter() -> EnvFilter {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|l| l.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    filter_for(level)
}

/// `level` for this service's crates, at most DEBUG for every other.
fn filter_for(level: LevelFilter) -> EnvFilter {
    let mut filter = EnvFilter::builder()
        .with_default_directive(level.min(LevelFilter::DEBUG).into())
        .parse_lossy("");
    for own in OWN_CRATES {
        filter = filter.add_directive(format!("{own}={level}").parse().expect("a valid directive"));
    }
    filter
}

/// Installs the subscriber of a function; call once, first thing in `main`.
pub fn init() {
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(filter());
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_trace_only_this_services_crates_trace() {
        let shown = filter_for(LevelFilter::TRACE).to_string();
        for own in OWN_CRATES {
            assert!(shown.contains(&format!("{own}=trace")), "{shown}");
        }
        // The default, for every other crate (the Lambda runtime, the AWS SDK): DEBUG.
        assert!(shown.split(',').any(|d| d == "debug"), "{shown}");
        assert!(!shown.split(',').any(|d| d == "trace"), "{shown}");
    }

    #[test]
    fn below_debug_every_crate_keeps_the_level() {
        let shown = filter_for(LevelFilter::INFO).to_string();
        assert!(
            shown.split(',').any(|d| d == "info") && shown.contains("shared=info"),
            "{shown}"
        );
    }
}
