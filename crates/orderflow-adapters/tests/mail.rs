//! The SMTP mailer against the SMTP sink over a real socket: what arrives (envelope, subject,
//! Message-ID, text and HTML), credentials from the URL, and 4xx, 5xx and unreachable
//! servers told apart.

use std::time::Duration;

use orderflow_adapters::{AdapterError, Email, Mailer, SmtpMailer};
use orderflow_sim::SmtpSink;

fn email(subject: &str) -> Email {
    Email {
        from: "Corner Shop <shop@shop.example>".into(),
        to: "Ada Lovelace <ada@example.com>".into(),
        subject: subject.into(),
        text: "Your order ord_1 is confirmed.\nThank you!".into(),
        html: None,
        message_id: "ord_1.confirmed".into(),
    }
}

async fn sink() -> (SmtpSink, SmtpMailer) {
    let sink = SmtpSink::start().await.expect("the sink starts");
    let mailer = SmtpMailer::with_timeout(&sink.url(), Duration::from_secs(5)).expect("a mailer");
    (sink, mailer)
}

#[tokio::test]
async fn an_email_arrives_with_its_subject_and_message_id() {
    let (sink, mailer) = sink().await;

    let answer = mailer
        .send(&email("Order ord_1 confirmed"))
        .await
        .expect("sent");

    assert!(answer.starts_with("250"), "{answer}");
    let messages = sink.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert_eq!(message.mail_from, "shop@shop.example");
    assert_eq!(message.rcpt_to, vec!["ada@example.com".to_owned()]);
    assert_eq!(message.subject.as_deref(), Some("Order ord_1 confirmed"));
    assert_eq!(
        message.message_id.as_deref(),
        Some("<ord_1.confirmed@shop.example>")
    );
    assert!(
        message
            .to
            .as_deref()
            .is_some_and(|to| to.contains("ada@example.com"))
    );
    assert_eq!(
        message.text().map(|t| t.replace("\r\n", "\n")).as_deref(),
        Some("Your order ord_1 is confirmed.\nThank you!")
    );
    assert_eq!(message.auth_user, None);
}

#[tokio::test]
async fn html_goes_as_an_alternative_to_the_text_and_unicode_survives() {
    let (sink, mailer) = sink().await;
    let mut rich = email("Votre commande « Café crème » est partie");
    rich.html = Some("<p>Your order is <b>confirmed</b>.</p>".into());
    rich.text = "Déjà en route.".into();

    mailer.send(&rich).await.expect("sent");

    let message = &sink.wait_for(1, Duration::from_secs(5)).await[0];
    assert_eq!(
        message.subject.as_deref(),
        Some("Votre commande « Café crème » est partie")
    );
    assert!(
        message
            .header("content-type")
            .is_some_and(|t| t.starts_with("multipart/alternative")),
        "{:?}",
        message.header("content-type")
    );
    assert_eq!(message.text().as_deref(), Some("Déjà en route."));
    assert!(message.data.contains("text/html"));
}

#[tokio::test]
async fn lines_starting_with_a_dot_survive_the_transfer() {
    let (sink, mailer) = sink().await;
    let mut dotted = email("Dots");
    dotted.text = "first\n.\n..second\n.third".into();

    mailer.send(&dotted).await.expect("sent");

    let message = &sink.wait_for(1, Duration::from_secs(5)).await[0];
    assert_eq!(
        message.text().map(|t| t.replace("\r\n", "\n")).as_deref(),
        Some("first\n.\n..second\n.third")
    );
}

#[tokio::test]
async fn a_451_is_transient_and_the_retry_is_delivered_once() {
    let (sink, mailer) = sink().await;
    sink.faults().fail_next(1, 451);

    let error = mailer
        .send(&email("Order ord_1 confirmed"))
        .await
        .expect_err("deferred");
    assert!(error.is_transient(), "{error:?}");
    mailer
        .send(&email("Order ord_1 confirmed"))
        .await
        .expect("delivered on the retry");

    assert_eq!(sink.refused(), 1);
    assert_eq!(sink.wait_for(1, Duration::from_secs(5)).await.len(), 1);
}

#[tokio::test]
async fn a_554_is_rejected() {
    let (sink, mailer) = sink().await;
    sink.faults().fail_next(1, 554);

    let error = mailer
        .send(&email("Order ord_1 confirmed"))
        .await
        .expect_err("refused");

    assert!(matches!(error, AdapterError::Rejected(_)), "{error:?}");
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn credentials_in_the_url_are_used() {
    let sink = SmtpSink::start().await.expect("the sink starts");
    let url = format!("smtp://orders%40shop.example:s3cret@{}", sink.addr());
    let mailer = SmtpMailer::new(&url).expect("a mailer");

    mailer.send(&email("With credentials")).await.expect("sent");

    let message = &sink.wait_for(1, Duration::from_secs(5)).await[0];
    assert_eq!(message.auth_user.as_deref(), Some("orders@shop.example"));
    assert!(!format!("{mailer:?}").contains("s3cret"));
}

#[tokio::test]
async fn an_unreachable_server_is_transient() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        listener.local_addr().expect("an address")
    };
    let mailer = SmtpMailer::new(&format!("smtp://{closed}")).expect("a mailer");

    let error = mailer
        .send(&email("Nobody home"))
        .await
        .expect_err("nobody listens");

    assert!(error.is_transient(), "{error:?}");
}

#[tokio::test]
async fn an_unusable_address_is_rejected_before_connecting() {
    let (sink, mailer) = sink().await;
    let mut bad = email("Bad");
    bad.to = "not an address".into();

    let error = mailer.send(&bad).await.expect_err("no recipient");

    assert!(matches!(error, AdapterError::Rejected(_)), "{error:?}");
    assert!(sink.messages().is_empty());
}
