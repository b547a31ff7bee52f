//! The alerters over real sockets: Slack-compatible webhooks into the Slack sink, e-mail into
//! the SMTP sink, and several channels at once.

use std::sync::Arc;
use std::time::Duration;

use orderflow_adapters::{
    AdapterError, Alert, Alerter, Alerters, EmailAlerter, Mailer, SlackWebhook, SmtpMailer,
};
use orderflow_sim::{SlackSink, SmtpSink};

fn alert() -> Alert {
    let mut alert = Alert::new(
        "Step authorize_payment gave up",
        "5 tries, last error: Stripe answered 503",
    );
    alert.run_id = Some("run_7".into());
    alert.order_id = Some("ord_1".into());
    alert
}

fn slack(sink: &SlackSink) -> SlackWebhook {
    SlackWebhook::new(sink.webhook_url()).expect("a webhook")
}

async fn email_alerter() -> (SmtpSink, EmailAlerter) {
    let sink = SmtpSink::start().await.expect("the sink starts");
    let mailer: Arc<dyn Mailer> = Arc::new(SmtpMailer::new(&sink.url()).expect("a mailer"));
    let alerter = EmailAlerter::new(mailer, "orderflow@shop.example", "ops@shop.example");
    (sink, alerter)
}

#[tokio::test]
async fn a_slack_alert_arrives_as_text_with_its_ids() {
    let sink = SlackSink::start().await.expect("the sink starts");

    slack(&sink).alert(&alert()).await.expect("alerted");

    let texts = sink.texts();
    assert_eq!(texts.len(), 1);
    assert!(
        texts[0].starts_with("*Step authorize_payment gave up*\n"),
        "{}",
        texts[0]
    );
    assert!(texts[0].contains("Run: run_7"), "{}", texts[0]);
    assert!(texts[0].contains("Order: ord_1"), "{}", texts[0]);
}

#[tokio::test]
async fn a_rate_limited_webhook_is_transient_and_says_when_to_come_back() {
    let sink = SlackSink::start().await.expect("the sink starts");
    sink.faults()
        .on("POST /services/*")
        .rate_limit(1, Duration::from_secs(30));

    let error = slack(&sink)
        .alert(&alert())
        .await
        .expect_err("rate limited");

    assert!(error.is_transient(), "{error:?}");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(30)));
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn a_webhook_url_that_is_not_known_is_rejected_without_showing_it() {
    let sink = SlackSink::start().await.expect("the sink starts");
    let wrong = format!("{}/services/T0/B0/not-the-secret", sink.url());
    let webhook = SlackWebhook::new(&wrong).expect("a webhook");

    let error = webhook.alert(&alert()).await.expect_err("no such webhook");

    match &error {
        AdapterError::Rejected(message) => {
            assert!(message.contains("no_service"), "{message}");
            assert!(!message.contains("not-the-secret"), "{message}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(!format!("{webhook:?}").contains("not-the-secret"));
}

#[tokio::test]
async fn an_email_alert_arrives_and_a_resent_one_has_the_same_message_id() {
    let (sink, alerter) = email_alerter().await;

    alerter.alert(&alert()).await.expect("alerted");
    alerter.alert(&alert()).await.expect("alerted again");

    let messages = sink.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(messages.len(), 2);
    assert_eq!(
        messages[0].subject.as_deref(),
        Some("[orderflow] Step authorize_payment gave up")
    );
    assert_eq!(messages[0].rcpt_to, vec!["ops@shop.example".to_owned()]);
    assert!(
        messages[0]
            .text()
            .is_some_and(|t| t.contains("Order: ord_1"))
    );
    assert!(messages[0].message_id.is_some());
    assert_eq!(messages[0].message_id, messages[1].message_id);
}

#[tokio::test]
async fn alerters_succeed_when_one_channel_gets_through() {
    let slack_sink = SlackSink::start().await.expect("the sink starts");
    slack_sink.faults().on("*").fail_every(500);
    let (smtp_sink, email) = email_alerter().await;
    let alerters = Alerters(vec![Arc::new(slack(&slack_sink)), Arc::new(email)]);

    alerters
        .alert(&alert())
        .await
        .expect("one channel is enough");

    assert!(slack_sink.messages().is_empty());
    assert_eq!(smtp_sink.wait_for(1, Duration::from_secs(5)).await.len(), 1);
}

#[tokio::test]
async fn alerters_fail_only_when_every_channel_fails() {
    let slack_sink = SlackSink::start().await.expect("the sink starts");
    slack_sink.faults().on("*").fail_every(500);
    let (smtp_sink, email) = email_alerter().await;
    smtp_sink.faults().fail_next(1, 554);
    let alerters = Alerters(vec![Arc::new(slack(&slack_sink)), Arc::new(email)]);

    let error = alerters
        .alert(&alert())
        .await
        .expect_err("nothing got through");

    // One channel may come back later, so the whole is worth retrying.
    assert!(error.is_transient(), "{error:?}");
    assert!(Alerters::default().alert(&alert()).await.is_ok());
}
