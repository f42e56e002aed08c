//! `redrive --from <DLQ URL> --to <queue URL> [--limit N]`: once the cause of the
//! failures is fixed, puts the dead-letter queue's messages back on the export queue.
//! Uses the standard AWS configuration (profile, region, `AWS_ENDPOINT_URL_SQS`).

use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!("usage: redrive --from <dead-letter queue URL> --to <queue URL> [--limit N]");
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let (Some(from), Some(to)) = (value("--from"), value("--to")) else {
        return usage();
    };
    let limit = match value("--limit").map(|l| l.parse::<u64>()) {
        None => None,
        Some(Ok(l)) => Some(l),
        Some(Err(_)) => return usage(),
    };
    let config = shared::aws::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    match redrive::redrive(&sqs, &from, &to, limit).await {
        Ok(done) => {
            println!(
                "moved {} message(s) back to {to}; {} refused (still in the DLQ); {} copied but not deleted from the DLQ",
                done.moved, done.refused, done.copied_not_deleted
            );
            if done.refused > 0 || done.copied_not_deleted > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("redrive failed: {e}");
            ExitCode::FAILURE
        }
    }
}
