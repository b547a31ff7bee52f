//! The sandbox platform servers over real HTTP on 127.0.0.1: they refuse wrong credentials,
//! filter, sort and page the way the platforms document, serve bodies orderflow's parsers
//! read back, see changes made while they run, and fail or slow down when told to.

use std::time::{Duration, Instant};

use orderflow_connectors::parse::prestashop::{self, Related};
use orderflow_connectors::{Platform, parse_order};
use orderflow_sim::{Generator, Shop, SimOrder, SimStatus};
use reqwest::StatusCode;
use serde_json::Value;
use serde_json::value::RawValue;
use time::macros::datetime;
use time::{Duration as Span, OffsetDateTime};

mod common;
use common::{assert_same_order, second};

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

/// Five orders a few minutes apart from 2025-03-01 10:00 UTC, with small ids.
fn five_orders(seed: u64) -> Vec<SimOrder> {
    Generator::new(seed)
        .first_id(100)
        .starting_at(datetime!(2025-03-01 10:00 UTC))
        .orders(5)
}

fn spaced(at: OffsetDateTime) -> String {
    at.format(time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second]"
    ))
    .expect("formattable")
}

#[tokio::test]
async fn vtex_oms_serves_an_order_only_with_the_app_key_and_token() {
    let order = Generator::new(5).order();
    let oms = orderflow_sim::vtex::serve_oms(Shop::with_orders([order.clone()]), "key", "token")
        .await
        .expect("serves");
    let url = format!("{}/api/oms/pvt/orders/{}-01", oms.url(), order.id);
    let get = |key: &'static str, token: &'static str| {
        http()
            .get(&url)
            .header("X-VTEX-API-AppKey", key)
            .header("X-VTEX-API-AppToken", token)
            .send()
    };

    assert_eq!(
        get("key", "wrong").await.expect("answers").status(),
        StatusCode::UNAUTHORIZED
    );
    let response = get("key", "token").await.expect("answers");
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.bytes().await.expect("a body");
    let parsed = parse_order(Platform::Vtex, &body).expect("VTEX parses it");
    assert_same_order(Platform::Vtex, &order, &parsed);

    let unknown = http()
        .get(format!("{}/api/oms/pvt/orders/1-01", oms.url()))
        .header("X-VTEX-API-AppKey", "key")
        .header("X-VTEX-API-AppToken", "token")
        .send()
        .await
        .expect("answers");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    oms.shop().update(order.id, |o| {
        o.change(SimStatus::Cancelled, o.updated_at + Span::minutes(5));
    });
    let body = get("key", "token")
        .await
        .expect("answers")
        .bytes()
        .await
        .expect("a body");
    let parsed = parse_order(Platform::Vtex, &body).expect("parses");
    assert_eq!(
        parsed.state,
        orderflow_connectors::PlatformState::Cancelled,
        "a change made while it runs is served"
    );
}

#[tokio::test]
async fn a_server_fails_and_slows_down_for_exactly_the_requests_it_is_told_to() {
    let order = Generator::new(5).order();
    let oms = orderflow_sim::vtex::serve_oms(Shop::with_orders([order.clone()]), "k", "t")
        .await
        .expect("serves");
    let get = || {
        http()
            .get(format!("{}/api/oms/pvt/orders/{}-01", oms.url(), order.id))
            .header("X-VTEX-API-AppKey", "k")
            .header("X-VTEX-API-AppToken", "t")
            .send()
    };
    oms.faults().fail_next(2, 503);
    oms.faults().slow_next(1, Duration::from_millis(300));
    assert_eq!(
        get().await.expect("answers").status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        get().await.expect("answers").status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let started = Instant::now();
    assert_eq!(get().await.expect("answers").status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(get().await.expect("answers").status(), StatusCode::OK);
    let statuses: Vec<u16> = oms.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 503, 200, 200]);
}

async fn ps_get(url: &str, key: &str) -> (StatusCode, String) {
    let response = http()
        .get(url)
        .basic_auth(key, Some(""))
        .send()
        .await
        .expect("answers");
    let status = response.status();
    (status, response.text().await.expect("a body"))
}

#[tokio::test]
async fn prestashop_lists_orders_updated_in_an_interval_only_with_date_1() {
    let orders = five_orders(11);
    let server = orderflow_sim::prestashop::serve(Shop::with_orders(orders.clone()), "WSKEY")
        .await
        .expect("serves");
    let listing = |query: &[(&str, String)]| {
        let request = http()
            .get(format!("{}/api/orders", server.url()))
            .basic_auth("WSKEY", Some(""))
            .query(query);
        async move {
            let response = request.send().await.expect("answers");
            (response.status(), response.text().await.expect("a body"))
        }
    };
    let (status, _) = ps_get(&format!("{}/api/orders", server.url()), "nope").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let mut by_update = orders.clone();
    by_update.sort_by_key(|o| (second(o.updated_at), o.id));
    // From the second order's update to the fourth's, both included.
    let from = spaced(by_update[1].updated_at);
    let to = spaced(by_update[3].updated_at);
    let interval = format!("[{from},{to}]");

    let (status, body) = listing(&[("filter[date_upd]", interval.clone())]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("<code><![CDATA[32]]></code>"), "{body}");
    let (status, body) = listing(&[("sort", "[date_upd_ASC]".into())]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("<code><![CDATA[38]]></code>"), "{body}");

    let (status, body) = listing(&[
        ("display", "[id,date_upd]".into()),
        ("filter[date_upd]", interval.clone()),
        ("date", "1".into()),
        ("sort", "[date_upd_DESC]".into()),
    ])
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let listed = prestashop::order_ids_and_dates(&body).expect("a listing orderflow reads");
    let expected: Vec<(String, String)> = by_update[1..=3]
        .iter()
        .rev()
        .map(|o| (o.id.to_string(), spaced(o.updated_at)))
        .collect();
    let got: Vec<(String, String)> = listed.into_iter().map(|l| (l.id, l.date_upd)).collect();
    assert_eq!(got, expected);

    let (_, page) = listing(&[
        ("display", "[id,date_upd]".into()),
        ("filter[date_upd]", interval),
        ("date", "1".into()),
        ("sort", "[date_upd_ASC]".into()),
        ("limit", "1,5".into()),
    ])
    .await;
    let ids: Vec<String> = prestashop::order_ids_and_dates(&page)
        .expect("reads")
        .into_iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(
        ids,
        [by_update[2].id.to_string(), by_update[3].id.to_string()],
        "the limit's offset skips the first"
    );

    // A bound without a time is midnight: the whole last day is left out (issue #10822).
    let (_, body) = listing(&[
        ("display", "[id,date_upd]".into()),
        ("filter[date_upd]", "[2025-02-28,2025-03-01]".into()),
        ("date", "1".into()),
    ])
    .await;
    assert_eq!(prestashop::order_ids_and_dates(&body), Ok(vec![]));
}

#[tokio::test]
async fn a_prestashop_order_and_what_it_refers_to_parse_back() {
    let orders = five_orders(12);
    let server = orderflow_sim::prestashop::serve(Shop::with_orders(orders.clone()), "WSKEY")
        .await
        .expect("serves");
    let base = format!("{}/api", server.url());
    for order in &orders {
        let (status, xml) = ps_get(&format!("{base}/orders/{}", order.id), "WSKEY").await;
        assert_eq!(status, StatusCode::OK);
        let refs = prestashop::order_refs(&xml).expect("refs");
        let address_id = refs.address_delivery.expect("an address");
        let (_, address_xml) = ps_get(&format!("{base}/addresses/{address_id}"), "WSKEY").await;
        let address = prestashop::address_fields(&address_xml).expect("an address");
        let field = |resource: &'static str, id: String, name: &'static str| {
            let base = base.clone();
            async move {
                let (status, xml) = ps_get(&format!("{base}/{resource}/{id}"), "WSKEY").await;
                assert_eq!(status, StatusCode::OK, "{resource}/{id}");
                prestashop::resource_field(&xml, name).expect("a resource")
            }
        };
        let (_, customer_xml) = ps_get(
            &format!("{base}/customers/{}", refs.customer.expect("a customer")),
            "WSKEY",
        )
        .await;
        let related = Related {
            country_iso: field(
                "countries",
                address.id_country.clone().expect("a country"),
                "iso_code",
            )
            .await
            .expect("an ISO code"),
            state_iso: field(
                "states",
                address.id_state.clone().expect("a state"),
                "iso_code",
            )
            .await,
            currency_iso: field("currencies", refs.currency.expect("a currency"), "iso_code")
                .await
                .expect("an ISO code"),
            carrier: field("carriers", refs.carrier.expect("a carrier"), "name").await,
            customer: Some(prestashop::customer_fields(&customer_xml).expect("a customer")),
            address,
        };
        let parsed = prestashop::parse_parts(&xml, &related).expect("PrestaShop parses it");
        assert_eq!(parsed.external_id, order.id.to_string());
        assert_eq!(parsed.number.as_deref(), Some(order.reference.as_str()));
        assert_eq!(parsed.updated_at, second(order.updated_at));
        assert_same_order(Platform::Prestashop, order, &parsed);
    }
    let (status, _) = ps_get(&format!("{base}/orders/999999"), "WSKEY").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[derive(serde::Deserialize)]
struct Search {
    items: Vec<Box<RawValue>>,
    total_count: usize,
}

#[tokio::test]
async fn magento_searches_by_update_time_sorted_and_paged_for_its_bearer_token() {
    let orders = five_orders(13);
    let server = orderflow_sim::magento::serve(Shop::with_orders(orders.clone()), "TOKEN")
        .await
        .expect("serves");
    let mut by_update = orders.clone();
    by_update.sort_by_key(|o| (second(o.updated_at), o.id));
    let cursor = spaced(by_update[0].updated_at);
    let search = |token: &'static str, condition: &'static str, page: u32| {
        http()
            .get(format!("{}/rest/default/V1/orders", server.url()))
            .bearer_auth(token)
            .query(&[
                (
                    "searchCriteria[filter_groups][0][filters][0][field]",
                    "updated_at".to_owned(),
                ),
                (
                    "searchCriteria[filter_groups][0][filters][0][value]",
                    cursor.clone(),
                ),
                (
                    "searchCriteria[filter_groups][0][filters][0][condition_type]",
                    condition.to_owned(),
                ),
                (
                    "searchCriteria[sortOrders][0][field]",
                    "updated_at".to_owned(),
                ),
                ("searchCriteria[sortOrders][0][direction]", "ASC".to_owned()),
                ("searchCriteria[pageSize]", "2".to_owned()),
                ("searchCriteria[currentPage]", page.to_string()),
            ])
            .send()
    };
    assert_eq!(
        search("wrong", "gt", 1).await.expect("answers").status(),
        StatusCode::UNAUTHORIZED
    );
    let mut seen = Vec::new();
    for page in 1..=3 {
        let response = search("TOKEN", "gt", page).await.expect("answers");
        assert_eq!(response.status(), StatusCode::OK);
        let found: Search = response.json().await.expect("a search result");
        assert_eq!(found.total_count, 4, "gt leaves the cursor's own order out");
        for item in found.items {
            let parsed = parse_order(Platform::Magento, item.get().as_bytes()).expect("parses");
            seen.push(parsed.external_id);
        }
    }
    let expected: Vec<String> = by_update[1..].iter().map(|o| o.id.to_string()).collect();
    assert_eq!(seen, expected);
    let past_the_end: Search = search("TOKEN", "gt", 9)
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert!(past_the_end.items.is_empty());
    let inclusive: Search = search("TOKEN", "gteq", 1)
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(inclusive.total_count, 5);
    let bad = search("TOKEN", "sometimes", 1).await.expect("answers");
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn shopify_admin_lists_open_orders_by_default_and_pages_through_link_headers() {
    let mut orders: Vec<SimOrder> = Generator::new(14)
        .starting_at(datetime!(2025-03-01 10:00 UTC))
        .orders(5);
    orders[0].status = SimStatus::Cancelled;
    let server = orderflow_sim::shopify::serve_admin(Shop::with_orders(orders.clone()), "shpat")
        .await
        .expect("serves");
    let list = |url: String| {
        http()
            .get(url)
            .header("X-Shopify-Access-Token", "shpat")
            .send()
    };
    let base = format!("{}/admin/api/2024-01/orders.json", server.url());
    let unauthorised = http().get(&base).send().await.expect("answers");
    assert_eq!(unauthorised.status(), StatusCode::UNAUTHORIZED);

    #[derive(serde::Deserialize)]
    struct Orders {
        orders: Vec<Box<RawValue>>,
    }
    let ids = |orders: &Orders| -> Vec<String> {
        orders
            .orders
            .iter()
            .map(|o| {
                parse_order(Platform::Shopify, o.get().as_bytes())
                    .expect("Shopify parses it")
                    .external_id
            })
            .collect()
    };
    let open: Orders = list(base.clone())
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(ids(&open).len(), 4, "the cancelled order is not open");

    let mut by_update = orders.clone();
    by_update.sort_by_key(|o| (second(o.updated_at), o.id));
    let min = second(by_update[1].updated_at)
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formattable");
    let first = list(format!(
        "{base}?status=any&updated_at_min={}&order=updated_at%20asc&limit=2",
        min.replace('+', "%2B")
    ))
    .await
    .expect("answers");
    let link = first
        .headers()
        .get("link")
        .and_then(|v| v.to_str().ok())
        .expect("a next link")
        .to_owned();
    let first: Orders = first.json().await.expect("JSON");
    let next = link
        .strip_prefix('<')
        .and_then(|l| l.split_once(">; rel=\"next\""))
        .map(|(url, _)| url.to_owned())
        .expect("rel=next");
    let second_page = list(next.clone()).await.expect("answers");
    assert!(second_page.headers().get("link").is_none(), "the last page");
    let second_page: Orders = second_page.json().await.expect("JSON");
    let mut seen = ids(&first);
    seen.extend(ids(&second_page));
    let expected: Vec<String> = by_update[1..].iter().map(|o| o.id.to_string()).collect();
    assert_eq!(
        seen, expected,
        "updated_at_min is inclusive, pages do not overlap"
    );

    let mixed = list(format!("{next}&status=any")).await.expect("answers");
    assert_eq!(mixed.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn woocommerce_lists_orders_modified_after_a_time_page_by_page() {
    let orders = five_orders(15);
    let server =
        orderflow_sim::woocommerce::serve(Shop::with_orders(orders.clone()), "ck_1", "cs_1")
            .await
            .expect("serves");
    let mut by_update = orders.clone();
    by_update.sort_by_key(|o| (second(o.updated_at), o.id));
    let after = by_update[0]
        .updated_at
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]"
        ))
        .expect("formattable");
    let list = |page: u32, per_page: u32, key: &'static str| {
        http()
            .get(format!("{}/wp-json/wc/v3/orders", server.url()))
            .basic_auth(key, Some("cs_1"))
            .query(&[
                ("modified_after", after.clone()),
                ("dates_are_gmt", "true".into()),
                ("orderby", "modified".into()),
                ("order", "asc".into()),
                ("per_page", per_page.to_string()),
                ("page", page.to_string()),
            ])
            .send()
    };
    assert_eq!(
        list(1, 3, "ck_wrong").await.expect("answers").status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        list(1, 101, "ck_1").await.expect("answers").status(),
        StatusCode::BAD_REQUEST
    );
    let mut seen = Vec::new();
    for page in 1..=2 {
        let response = list(page, 3, "ck_1").await.expect("answers");
        assert_eq!(response.status(), StatusCode::OK);
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        assert_eq!(header("x-wp-total").as_deref(), Some("4"), "exclusive");
        assert_eq!(header("x-wp-totalpages").as_deref(), Some("2"));
        let items: Vec<Box<RawValue>> = response.json().await.expect("an array");
        for item in items {
            let parsed = parse_order(Platform::Woocommerce, item.get().as_bytes()).expect("parses");
            seen.push(parsed.external_id);
        }
    }
    let expected: Vec<String> = by_update[1..].iter().map(|o| o.id.to_string()).collect();
    assert_eq!(seen, expected);
    let body: Value = list(3, 3, "ck_1")
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(body, Value::Array(vec![]));
}

/// `at` as VTEX's `f_creationDate` bounds are written, to the millisecond.
fn vtex_bound(at: OffsetDateTime) -> String {
    at.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    ))
    .expect("formattable")
}

#[tokio::test]
async fn vtex_oms_lists_orders_created_in_an_interval_newest_first_page_by_page() {
    let orders = five_orders(16);
    let oms = orderflow_sim::vtex::serve_oms(Shop::with_orders(orders.clone()), "key", "token")
        .await
        .expect("serves");
    let list = |query: Vec<(&'static str, String)>, token: &'static str| {
        http()
            .get(format!("{}/api/oms/pvt/orders", oms.url()))
            .header("X-VTEX-API-AppKey", "key")
            .header("X-VTEX-API-AppToken", token)
            .query(&query)
            .send()
    };
    assert_eq!(
        list(Vec::new(), "wrong").await.expect("answers").status(),
        StatusCode::UNAUTHORIZED
    );
    for refused in [
        vec![("per_page", "101".to_owned())],
        vec![("page", "31".to_owned())],
        vec![("f_creationDate", "lastChange:[a TO b]".to_owned())],
        vec![("orderBy", "lastChange,desc".to_owned())],
    ] {
        let response = list(refused.clone(), "token").await.expect("answers");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{refused:?}");
    }

    // Orders 1 to 3, both ends inclusive to the millisecond.
    let range = format!(
        "creationDate:[{} TO {}]",
        vtex_bound(orders[1].created_at),
        vtex_bound(orders[3].created_at + Span::milliseconds(1)),
    );
    let page = |number: u32| {
        list(
            vec![
                ("f_creationDate", range.clone()),
                ("orderBy", "creationDate,desc".to_owned()),
                ("page", number.to_string()),
                ("per_page", "2".to_owned()),
            ],
            "token",
        )
    };
    let mut listed = Vec::new();
    for number in 1..=2 {
        let body: Value = page(number)
            .await
            .expect("answers")
            .json()
            .await
            .expect("JSON");
        assert_eq!(body["paging"]["total"], 3);
        assert_eq!(body["paging"]["pages"], 2);
        assert_eq!(body["paging"]["currentPage"], number);
        for summary in body["list"].as_array().expect("a list") {
            let id = summary["orderId"].as_str().expect("an orderId").to_owned();
            let order = orders
                .iter()
                .find(|o| format!("{}-01", o.id) == id)
                .expect("a listed order");
            let last_change = summary["lastChange"].as_str().expect("a lastChange");
            assert_eq!(
                orderflow_connectors::timestamp::parse("lastChange", last_change).expect("a time"),
                order.updated_at
            );
            assert!(summary["status"].is_string());
            listed.push(id);
        }
    }
    let expected: Vec<String> = orders[1..=3]
        .iter()
        .rev()
        .map(|o| format!("{}-01", o.id))
        .collect();
    assert_eq!(listed, expected, "newest first");

    let everything: Value = list(Vec::new(), "token")
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(everything["paging"]["perPage"], 15, "VTEX's default page");
    assert_eq!(everything["list"].as_array().map(Vec::len), Some(5));
    assert_eq!(
        everything["list"][0]["orderId"],
        format!("{}-01", orders[4].id)
    );
}

#[tokio::test]
async fn jumpseller_api_lists_orders_after_an_id_page_by_page_for_its_login_and_token() {
    let orders = five_orders(17);
    let api = orderflow_sim::jumpseller::serve_api(
        Shop::with_orders(orders.clone()),
        "login",
        "authtoken",
    )
    .await
    .expect("serves");
    let get = |path: String, token: &'static str| {
        http()
            .get(format!("{}/v1/{path}", api.url()))
            .basic_auth("login", Some(token))
            .send()
    };
    assert_eq!(
        get("orders.json".into(), "wrong")
            .await
            .expect("answers")
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let by_query = http()
        .get(format!(
            "{}/v1/orders/count.json?login=login&authtoken=authtoken",
            api.url()
        ))
        .send()
        .await
        .expect("answers");
    assert_eq!(
        by_query.status(),
        StatusCode::OK,
        "the deprecated query form"
    );
    let count: Value = by_query.json().await.expect("JSON");
    assert_eq!(count["count"], 5);
    assert_eq!(
        get("orders.json?limit=0".into(), "authtoken")
            .await
            .expect("answers")
            .status(),
        StatusCode::BAD_REQUEST
    );

    let after = orders[1].id;
    let mut seen = Vec::new();
    for page in 1..=2 {
        let items: Vec<Box<RawValue>> = get(
            format!("orders/after/{after}.json?limit=2&page={page}"),
            "authtoken",
        )
        .await
        .expect("answers")
        .json()
        .await
        .expect("an array");
        for item in items {
            let parsed = parse_order(Platform::Jumpseller, item.get().as_bytes()).expect("parses");
            let order = orders
                .iter()
                .find(|o| o.id.to_string() == parsed.external_id)
                .expect("a listed order");
            assert_same_order(Platform::Jumpseller, order, &parsed);
            seen.push(order.id);
        }
    }
    let expected: Vec<u64> = orders[2..].iter().map(|o| o.id).collect();
    assert_eq!(seen, expected, "in id order, after the id asked for");

    let all: Vec<Value> = get("orders.json?limit=500".into(), "authtoken")
        .await
        .expect("answers")
        .json()
        .await
        .expect("an array");
    assert_eq!(all.len(), 5);
    let one = get(format!("orders/{}.json", orders[0].id), "authtoken")
        .await
        .expect("answers");
    assert_eq!(one.status(), StatusCode::OK);
    let body = one.bytes().await.expect("a body");
    let parsed = parse_order(Platform::Jumpseller, &body).expect("parses");
    assert_same_order(Platform::Jumpseller, &orders[0], &parsed);
    assert_eq!(
        get("orders/1.json".into(), "authtoken")
            .await
            .expect("answers")
            .status(),
        StatusCode::NOT_FOUND
    );
}
