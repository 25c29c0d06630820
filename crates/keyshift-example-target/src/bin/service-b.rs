//! Service B, served locally: `SERVICE_B_ADMIN_TOKEN=... cargo run -p keyshift-example-target
//! --bin service-b`. Listens on `SERVICE_B_ADDR` (default `127.0.0.1:8080`); keys live in
//! memory and are gone when it stops.

use keyshift_example_target::config::AdminToken;
use keyshift_example_target::service_b::ServiceB;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let token = std::env::var("SERVICE_B_ADMIN_TOKEN")
        .map_err(|_| "SERVICE_B_ADMIN_TOKEN is required (the admin API's bearer token)")?;
    // The same rules as the rotation function's KEYSHIFT_EXAMPLE_ADMIN_TOKEN.
    let token = AdminToken::new(token).map_err(|p| format!("SERVICE_B_ADMIN_TOKEN {p}"))?;
    let addr = std::env::var("SERVICE_B_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("service B listening on http://{}", listener.local_addr()?);
    ServiceB::new(token.expose()).serve(listener).await?;
    Ok(())
}
