//! A local Segment: `segment-receiver [PORT]` (default 9100) on 127.0.0.1.
//! See `testkit::receiver` for its rules and its control API.

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .map(|p| p.parse().expect("PORT must be a number"))
        .unwrap_or(9100);
    let receiver = testkit::receiver::start(([127, 0, 0, 1], port).into()).await?;
    println!("Segment receiver on {}", receiver.base_url());
    println!("  POST /v1/batch   (Basic auth with the write key)");
    println!("  GET  /__receiver/messages, /__receiver/requests; POST /__receiver/faults, /__receiver/reset");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
