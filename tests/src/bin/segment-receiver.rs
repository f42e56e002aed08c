//! A local Segment: `segment-receiver [PORT] [--sink]` (default 9100) on 127.0.0.1.
//! See `tests::receiver` for its rules and its control API. `--sink`: the benchmark
//! sink, which checks limits and counts requests but keeps no messages.

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let sink = std::env::args().any(|a| a == "--sink");
    let port: u16 = std::env::args()
        .skip(1)
        .find(|a| a != "--sink")
        .map(|p| p.parse().expect("PORT must be a number"))
        .unwrap_or(9100);
    let addr = ([127, 0, 0, 1], port).into();
    let receiver = if sink {
        tests::receiver::start_sink(addr).await?
    } else {
        tests::receiver::start(addr).await?
    };
    println!("Segment receiver on {}", receiver.base_url());
    println!("  POST /v1/batch   (Basic auth with the write key)");
    println!("  GET  /__receiver/messages, /__receiver/requests; POST /__receiver/faults, /__receiver/reset");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
