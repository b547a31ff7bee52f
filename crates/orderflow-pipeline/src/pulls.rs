//! The storefront pulls (PrestaShop and Magento orders, reconciliation of the push platforms)
//! as a scheduled workflow of the engine, so that each tick of its cron pulls once across all
//! nodes, on whichever worker claims the step, instead of on a timer of every node.

use std::time::Duration;

use async_trait::async_trait;
use orderflow_intake::pull::Puller;
use orderflow_workflow::{
    Cron, Outcome, RetryPolicy, StepContext, StepError, StepHandler, Workflow, WorkflowBuilder,
    step,
};
use serde_json::json;

/// The name of the pulls' workflow.
pub const PULLS_WORKFLOW: &str = "storefront_pulls";

/// Its one step: a round over every store with API credentials.
pub const PULL_STEP: &str = "pull_stores";

/// Every five minutes: often enough that a pulled shop's order waits little, seldom enough
/// to stay far inside the platforms' rate limits.
pub const DEFAULT_PULL_CRON: &str = "*/5 * * * *";

/// A platform that is down gets a few tries within the tick; the cursor only moves after a
/// stored page, so a round that gives up loses nothing and the next tick carries on.
const RETRY: RetryPolicy = RetryPolicy::new(3, Duration::from_secs(10), Duration::from_secs(60));

/// A round reads at most `max_pages` pages per store, each under the puller's own request
/// timeout; four minutes ends a stuck round before the next five-minute tick.
const TIMEOUT: Duration = Duration::from_secs(4 * 60);

/// The pulls' workflow, started on `schedule` (none: only by hand).
pub fn pulls_workflow(schedule: Option<Cron>) -> Workflow {
    // One round at a time over every node: two rounds at once would read the same pages
    // from the same cursors and store the same deliveries twice over (as duplicates).
    let mut builder = WorkflowBuilder::new(PULLS_WORKFLOW)
        .step(step(PULL_STEP).retry(RETRY).timeout(TIMEOUT).concurrency(1));
    if let Some(cron) = schedule {
        builder = builder.schedule(cron);
    }
    match builder.build() {
        Ok(workflow) => workflow,
        // One step, no edges: nothing the builder could refuse; the unit test builds it.
        Err(error) => unreachable!("the pulls workflow is well formed: {error}"),
    }
}

/// Pulls every store with API credentials into the inbox.
#[derive(Debug)]
pub(crate) struct PullStores(pub(crate) Puller);

#[async_trait]
impl StepHandler for PullStores {
    async fn run(&self, _context: &StepContext) -> Result<Outcome, StepError> {
        let results =
            self.0.try_pull_all().await.map_err(|error| {
                StepError::retry(format!("listing the stores to pull: {error}"))
            })?;
        let mut stores = serde_json::Map::new();
        let mut failed = Vec::new();
        let mut passing = false;
        for (store_id, result) in &results {
            match result {
                Ok(report) => {
                    stores.insert(
                        store_id.to_string(),
                        json!({
                            "pages": report.pages,
                            "listed": report.listed,
                            "stored": report.stored,
                            "duplicates": report.duplicates,
                            "cursor": report.cursor,
                        }),
                    );
                }
                Err(error) => {
                    passing |= error.is_passing();
                    failed.push(format!("{store_id}: {error}"));
                }
            }
        }
        if failed.is_empty() {
            return Ok(Outcome::Done(Some(json!({ "stores": stores }))));
        }
        // Every store is pulled again on the next try; those that succeeded cost a listing
        // each, having nothing new past their cursor.
        let message = format!(
            "{} of {} stores could not be pulled: {}",
            failed.len(),
            results.len(),
            failed.join("; ")
        );
        if passing {
            Err(StepError::retry(message))
        } else {
            Err(StepError::fatal(message))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pulls_run_one_round_at_a_time_on_their_schedule() {
        let cron = Cron::parse(DEFAULT_PULL_CRON).expect("the default cron parses");
        let workflow = pulls_workflow(Some(cron.clone()));
        assert_eq!(workflow.schedule(), Some(&cron));
        let pull = workflow.step(PULL_STEP).expect("the pull step");
        assert_eq!(pull.concurrency, Some(1));
        assert!(pull.retry.max_attempts > 1);
        assert!(pulls_workflow(None).schedule().is_none());
    }
}
