//! The AWS SDK's configuration of every function: region and credentials from the
//! environment, as the SDK reads them, and a bound on every call (README, "Configuration",
//! "Timeouts"). Without one, a DynamoDB or SQS call that hangs holds the invocation until
//! Lambda kills it, and the whole batch fails instead of the records that needed the call.

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use std::time::Duration;

/// Connecting to DynamoDB or SQS.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// One attempt of a call (the SDK retries a timed-out attempt, up to its 3 attempts).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// A whole call, retries included: well inside every function's timeout (10 s and more).
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);

/// The timeouts every AWS SDK client of the service has.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The SDK's configuration from the environment, with [`timeouts`].
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts())
        .load()
        .await
}
