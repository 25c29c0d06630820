//! The stock rotation function: values of the kind each secret's tags ask for.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    keyshift_lambda::run_stock().await
}
