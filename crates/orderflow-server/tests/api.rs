//! The HTTP API over real TCP on 127.0.0.1: every endpoint and every error status of
//! PRODUCT.md §3 and §4.

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{ADMIN, Backend, TestApp, on_both_backends};

#[tokio::test]
async fn placing_an_order_reserves_every_line_and_answers_201_with_a_location() {
    let app = TestApp::spawn().await;
    app.put_product("mug", 10).await;
    app.put_product("tea", 5).await;

    let reply = app.place(ADMIN, &[("mug", 2), ("tea", 1)]).await;

    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["message"], "Success! Order placed");
    assert_eq!(reply.body["order_status"], "confirmed");
    assert_eq!(
        reply.body["products"],
        json!([{"product_id": "mug", "item_count": 2}, {"product_id": "tea", "item_count": 1}])
    );
    let order_id = reply.body["order_id"].as_str().expect("order_id");
    assert!(order_id.starts_with("ord_"));
    assert_eq!(
        reply.header("location"),
        Some(format!("/orders/{order_id}").as_str())
    );
    assert_eq!(app.stock("mug").await, (10, 2));
    assert_eq!(app.stock("tea").await, (5, 1));
}

#[tokio::test]
async fn an_order_is_readable_with_its_timeline_total_and_etag() {
    let app = TestApp::spawn().await;
    app.put_product("mug", 10).await;
    let body = json!({
        "products": [{"product_id": "mug", "item_count": 3}],
        "customer": {"customer_id": "c-1", "name": "Ana", "email": "ana@example.com"},
        "shipping_address": {"line1": "Av. Providencia 1", "city": "Santiago", "region": "RM", "country": "CL"}
    });
    let placed = app.post("/orders", ADMIN, body).await;
    let order_id = placed.body["order_id"].as_str().expect("id");

    let reply = app.get(&format!("/orders/{order_id}"), ADMIN).await;

    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("etag"), Some("\"1\""));
    let order = &reply.body;
    assert_eq!(order["order_id"], order_id);
    assert_eq!(order["order_status"], "confirmed");
    assert_eq!(
        order["products"],
        json!([{"product_id": "mug", "item_count": 3, "unit_price": 1250, "currency": "EUR"}])
    );
    assert_eq!(order["total"], json!({"amount": 3750, "currency": "EUR"}));
    assert_eq!(order["customer"]["email"], "ana@example.com");
    assert_eq!(order["shipping_address"]["region"], "RM");
    assert_eq!(order["shipments"], json!([]));
    let statuses: Vec<&Value> = order["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|e| &e["status"])
        .collect();
    assert_eq!(statuses, vec!["pending", "confirmed"]);
    assert_eq!(order["version"], 1);
    assert!(
        order["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
}

#[tokio::test]
async fn an_order_for_more_than_is_available_is_409_naming_every_short_product_and_reserves_nothing()
 {
    let app = TestApp::spawn().await;
    app.put_product("mug", 10).await;
    app.put_product("tea", 1).await;
    app.put_product("pot", 2).await;

    let reply = app
        .place(ADMIN, &[("mug", 2), ("tea", 3), ("pot", 5)])
        .await;

    reply.assert_problem(409, "insufficient-stock");
    assert_eq!(
        reply.body["shortfalls"],
        json!([{"product_id": "tea", "requested": 3, "available": 1}, {"product_id": "pot", "requested": 5, "available": 2}])
    );
    assert_eq!(app.stock("mug").await, (10, 0));
    assert_eq!(app.order_count().await, 0);
}

#[tokio::test]
async fn allow_partial_places_what_is_in_stock_and_lists_the_unavailable_rest() {
    let app = TestApp::spawn().await;
    app.put_product("mug", 10).await;
    app.put_product("tea", 1).await;
    let body = json!({"products": [{"product_id": "mug", "item_count": 2}, {"product_id": "tea", "item_count": 3}], "allow_partial": true});

    let reply = app.post("/orders", ADMIN, body).await;

    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["order_status"], "backordered");
    assert_eq!(
        reply.body["products"],
        json!([{"product_id": "mug", "item_count": 2}, {"product_id": "tea", "item_count": 1}])
    );
    assert_eq!(
        reply.body["unavailable"],
        json!([{"product_id": "tea", "requested": 3, "available": 1}])
    );
    assert_eq!(app.stock("tea").await, (1, 1));
    let order = app
        .get(
            &format!("/orders/{}", reply.body["order_id"].as_str().expect("id")),
            ADMIN,
        )
        .await;
    assert_eq!(
        order.body["backordered"],
        json!([{"product_id": "tea", "item_count": 2}])
    );
}

#[tokio::test]
async fn the_same_idempotency_key_and_body_return_the_first_response_without_a_second_order() {
    let app = TestApp::spawn().await;
    app.put_product("mug", 10).await;
    let body = json!({"products": [{"product_id": "mug", "item_count": 2}]});
    let key = [("idempotency-key", "order-42")];

    let first = app
        .send("POST", "/orders", Some(ADMIN), Some(body.clone()), &key)
        .await;
    let second = app
        .send("POST", "/orders", Some(ADMIN), Some(body), &key)
        .await;

    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(second.status, StatusCode::CREATED);
    assert_eq!(second.body, first.body);
    assert_eq!(second.header("location"), first.header("location"));
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_eq!(app.stock("mug").await, (10, 2));
    assert_eq!(app.order_count().await, 1);
}

#[tokio::test]
async fn the_same_idempotency_key_with_another_body_is_422_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.put_product("mug", 10).await;
    let key = [("idempotency-key", "order-43")];
    app.send(
        "POST",
        "/orders",
        Some(ADMIN),
        Some(json!({"products": [{"product_id": "mug", "item_count": 1}]})),
        &key,
    )
    .await;

    let reply = app
        .send(
            "POST",
            "/orders",
            Some(ADMIN),
            Some(json!({"products": [{"product_id": "mug", "item_count": 5}]})),
            &key,
        )
        .await;

    reply.assert_problem(422, "idempotency-key-reused");
    assert_eq!(app.stock("mug").await, (10, 1));
    assert_eq!(app.order_count().await, 1);
}

async fn twenty_racing_requests_with_one_idempotency_key_make_exactly_one_order(backend: Backend) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    let app = std::sync::Arc::new(app);
    app.put_product("mug", 100).await;
    let body = json!({"products": [{"product_id": "mug", "item_count": 3}]});

    let racers: Vec<_> = (0..20)
        .map(|_| {
            let (app, body) = (app.clone(), body.clone());
            tokio::spawn(async move {
                app.send(
                    "POST",
                    "/orders",
                    Some(ADMIN),
                    Some(body),
                    &[("idempotency-key", "race")],
                )
                .await
            })
        })
        .collect();
    let mut replies = Vec::new();
    for racer in racers {
        replies.push(racer.await.expect("task"));
    }

    assert!(replies.iter().all(|r| r.status == StatusCode::CREATED));
    assert!(replies.iter().all(|r| r.body == replies[0].body));
    assert_eq!(
        replies
            .iter()
            .filter(|r| r.header("idempotent-replayed").is_none())
            .count(),
        1
    );
    assert_eq!(app.order_count().await, 1);
    assert_eq!(app.stock("mug").await, (100, 3));
    if let Ok(app) = std::sync::Arc::try_unwrap(app) {
        app.shutdown().await;
    }
}

on_both_backends!(
    twenty_racing_requests_with_one_idempotency_key_make_exactly_one_order,
    multi_thread
);

#[tokio::test]
async fn editing_an_order_re_reserves_atomically_and_bumps_the_etag() {
    let app = TestApp::spawn().await;
    app.put_product("mug", 10).await;
    app.put_product("tea", 4).await;
    let placed = app.place(ADMIN, &[("mug", 2)]).await;
    let path = format!("/orders/{}", placed.body["order_id"].as_str().expect("id"));

    let edit = json!({"products": [{"product_id": "mug", "item_count": 5}, {"product_id": "tea", "item_count": 4}], "shipping_address": {"city": "Valparaíso", "country": "CL"}});
    let reply = app
        .send(
            "PATCH",
            &path,
            Some(ADMIN),
            Some(edit),
            &[("if-match", "\"1\"")],
        )
        .await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["message"], "Order successfully updated");
    assert_eq!(reply.body["version"], 2);
    assert_eq!(reply.body["shipping_address"]["city"], "Valparaíso");
    assert_eq!(reply.header("etag"), Some("\"2\""));
    assert_eq!(app.stock("mug").await, (10, 5));
    assert_eq!(app.stock("tea").await, (4, 4));

    let too_much = json!({"products": [{"product_id": "mug", "item_count": 11}]});
    app.send("PATCH", &path, Some(ADMIN), Some(too_much), &[])
        .await
        .assert_problem(409, "insufficient-stock");
    assert_eq!(app.stock("mug").await, (10, 5));
    assert_eq!(app.stock("tea").await, (4, 4));
}

#[tokio::test]
async fn an_edit_based_on_a_stale_etag_is_412_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.put_product("mug", 10).await;
    let placed = app.place(ADMIN, &[("mug", 2)]).await;
    let path = format!("/orders/{}", placed.body["order_id"].as_str().expect("id"));
    let edit = |n: i64| json!({"products": [{"product_id": "mug", "item_count": n}]});
    app.send(
        "PATCH",
        &path,
        Some(ADMIN),
        Some(edit(3)),
        &[("if-match", "\"1\"")],
    )
    .await;

    let stale = app
        .send(
            "PATCH",
            &path,
            Some(ADMIN),
            Some(edit(7)),
            &[("if-match", "\"1\"")],
        )
        .await;

    stale.assert_problem(412, "precondition-failed");
    assert_eq!(stale.body["current_version"], 2);
    assert_eq!(app.stock("mug").await, (10, 3));
}

#[tokio::test]
async fn cancelling_releases_stock_exactly_once_and_keeps_the_order_readable() {
    let app = TestApp::spawn().await;
    app.put_product("mug", 10).await;
    let placed = app.place(ADMIN, &[("mug", 4)]).await;
    let path = format!("/orders/{}", placed.body["order_id"].as_str().expect("id"));

    let first = app.send("DELETE", &path, Some(ADMIN), None, &[]).await;
    let again = app.send("DELETE", &path, Some(ADMIN), None, &[]).await;

    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body["message"], "Order successfully cancelled");
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(app.stock("mug").await, (10, 0));
    let order = app.get(&path, ADMIN).await;
    assert_eq!(order.body["order_status"], "cancelled");
    assert_eq!(order.body["timeline"].as_array().map(Vec::len), Some(3));
    let edit = json!({"products": [{"product_id": "mug", "item_count": 1}]});
    app.send("PATCH", &path, Some(ADMIN), Some(edit), &[])
        .await
        .assert_problem(409, "conflict");
}

#[tokio::test]
async fn orders_list_newest_first_with_a_cursor_and_filters() {
    let app = TestApp::spawn().await;
    app.put_product("mug", 100).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let placed = app.place(ADMIN, &[("mug", 1)]).await;
        ids.push(placed.body["order_id"].as_str().expect("id").to_owned());
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    app.send(
        "DELETE",
        &format!("/orders/{}", ids[0]),
        Some(ADMIN),
        None,
        &[],
    )
    .await;

    let first = app.get("/orders?limit=2", ADMIN).await;
    let cursor = first.body["next_cursor"].as_str().expect("more pages");
    let second = app
        .get(&format!("/orders?limit=2&cursor={cursor}"), ADMIN)
        .await;
    let third = app
        .get(
            &format!(
                "/orders?limit=2&cursor={}",
                second.body["next_cursor"].as_str().expect("more")
            ),
            ADMIN,
        )
        .await;
    let cancelled = app.get("/orders?status=cancelled", ADMIN).await;

    let page_ids = |r: &support::Reply| -> Vec<String> {
        r.body["orders"]
            .as_array()
            .expect("orders")
            .iter()
            .map(|o| o["order_id"].as_str().expect("id").to_owned())
            .collect()
    };
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(
        [page_ids(&first), page_ids(&second), page_ids(&third)].concat(),
        newest_first
    );
    assert!(third.body.get("next_cursor").is_none());
    assert_eq!(page_ids(&cancelled), vec![ids[0].clone()]);
    app.get("/orders?limit=0", ADMIN)
        .await
        .assert_problem(400, "invalid-query");
    app.get("/orders?status=lost", ADMIN)
        .await
        .assert_problem(400, "invalid-query");
}

#[tokio::test]
async fn products_are_created_read_listed_and_restocked() {
    let app = TestApp::spawn().await;
    let created = app.put_product("mug", 7).await;
    assert_eq!(created.body["available"], 7);
    app.put_product("cup", 1).await;

    let restocked = app
        .post("/products/mug/stock", ADMIN, json!({"delta": 5}))
        .await;
    let written_off = app
        .post("/products/mug/stock", ADMIN, json!({"delta": -2}))
        .await;
    let listed = app.get("/products?limit=1", ADMIN).await;
    let next = app
        .get(
            &format!(
                "/products?limit=1&cursor={}",
                listed.body["next_cursor"].as_str().expect("more")
            ),
            ADMIN,
        )
        .await;

    assert_eq!(restocked.body["on_hand"], 12);
    assert_eq!(written_off.body["on_hand"], 10);
    assert_eq!(written_off.body["price"], 1250);
    assert_eq!(written_off.body["currency"], "EUR");
    assert_eq!(listed.body["products"][0]["product_id"], "cup");
    assert_eq!(next.body["products"][0]["product_id"], "mug");
    app.get("/products/ghost", ADMIN)
        .await
        .assert_problem(404, "not-found");
    app.post("/products/ghost/stock", ADMIN, json!({"delta": 1}))
        .await
        .assert_problem(404, "not-found");
}

#[tokio::test]
async fn stock_cannot_drop_below_what_open_orders_reserve() {
    let app = TestApp::spawn().await;
    app.put_product("mug", 5).await;
    app.place(ADMIN, &[("mug", 4)]).await;

    app.post("/products/mug/stock", ADMIN, json!({"delta": -2}))
        .await
        .assert_problem(409, "conflict");
    let lower = json!({"name": "Mug", "price": 100, "currency": "EUR", "on_hand": 3});
    app.send("PUT", "/products/mug", Some(ADMIN), Some(lower), &[])
        .await
        .assert_problem(409, "conflict");

    assert_eq!(app.stock("mug").await, (5, 4));
}

#[tokio::test]
async fn stores_are_created_once_by_admins_only() {
    let app = TestApp::spawn().await;
    let body = json!({"store_id": "north", "name": "North shop", "platform": "shopify"});

    let created = app.post("/stores", ADMIN, body.clone()).await;
    let again = app.post("/stores", ADMIN, body).await;
    let store_token = app.key(json!({"role": "store", "store_id": "north"})).await;
    let by_store = app
        .post(
            "/stores",
            &store_token,
            json!({"store_id": "south", "name": "South"}),
        )
        .await;

    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.header("location"), Some("/stores/north"));
    assert_eq!(created.body["platform"], "shopify");
    again.assert_problem(409, "conflict");
    by_store.assert_problem(403, "forbidden");
    assert_eq!(
        app.get("/stores/north", &store_token).await.status,
        StatusCode::OK
    );
    app.get("/stores/default", &store_token)
        .await
        .assert_problem(404, "not-found");
    app.post(
        "/stores",
        ADMIN,
        json!({"store_id": "x", "name": "X", "platform": "ebay"}),
    )
    .await
    .assert_problem(400, "invalid-body");
}

#[tokio::test]
async fn another_tenants_orders_and_products_are_not_found() {
    let app = TestApp::spawn().await;
    app.post(
        "/stores",
        ADMIN,
        json!({"store_id": "north", "name": "North"}),
    )
    .await;
    app.post(
        "/stores",
        ADMIN,
        json!({"store_id": "south", "name": "South"}),
    )
    .await;
    let north = app.key(json!({"role": "store", "store_id": "north"})).await;
    let south = app.key(json!({"role": "store", "store_id": "south"})).await;
    let body = json!({"name": "Kettle", "price": 3000, "currency": "EUR", "on_hand": 5});
    assert_eq!(
        app.send("PUT", "/products/kettle", Some(&north), Some(body), &[])
            .await
            .status,
        StatusCode::OK
    );
    let placed = app.place(&north, &[("kettle", 1)]).await;
    let path = format!("/orders/{}", placed.body["order_id"].as_str().expect("id"));

    app.get(&path, &south)
        .await
        .assert_problem(404, "not-found");
    app.send("DELETE", &path, Some(&south), None, &[])
        .await
        .assert_problem(404, "not-found");
    let edit = json!({"products": [{"product_id": "kettle", "item_count": 2}]});
    app.send("PATCH", &path, Some(&south), Some(edit), &[])
        .await
        .assert_problem(404, "not-found");
    app.get("/products/kettle", &south)
        .await
        .assert_problem(404, "not-found");
    app.get("/products/kettle?store_id=north", &south)
        .await
        .assert_problem(404, "not-found");
    assert_eq!(app.get("/orders", &south).await.body["orders"], json!([]));
    assert_eq!(
        app.get(&path, &north).await.body["order_status"],
        "confirmed"
    );
    assert_eq!(app.get(&path, ADMIN).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_customer_token_sees_and_orders_only_as_its_own_customer() {
    let app = TestApp::spawn().await;
    app.put_product("mug", 10).await;
    let ana = app
        .key(json!({"role": "customer", "customer_id": "ana"}))
        .await;
    let bob = app
        .key(json!({"role": "customer", "customer_id": "bob"}))
        .await;
    let body = json!({"products": [{"product_id": "mug", "item_count": 1}], "customer": {"customer_id": "bob", "name": "Ana"}});

    let placed = app.post("/orders", &ana, body).await;
    let path = format!("/orders/{}", placed.body["order_id"].as_str().expect("id"));

    assert_eq!(
        app.get(&path, &ana).await.body["customer"]["customer_id"],
        "ana"
    );
    app.get(&path, &bob).await.assert_problem(404, "not-found");
    assert_eq!(app.get("/orders", &bob).await.body["orders"], json!([]));
    assert_eq!(
        app.get("/orders", &ana).await.body["orders"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let put = json!({"name": "Mug", "price": 1, "currency": "EUR", "on_hand": 1});
    app.send("PUT", "/products/mug", Some(&ana), Some(put), &[])
        .await
        .assert_problem(403, "forbidden");
    app.post(
        "/api-keys",
        &ana,
        json!({"role": "customer", "customer_id": "eve"}),
    )
    .await
    .assert_problem(403, "forbidden");
    assert_eq!(
        app.send("DELETE", &path, Some(&ana), None, &[])
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn missing_malformed_or_forged_tokens_are_401() {
    let app = TestApp::spawn().await;

    let missing = app.send("GET", "/orders", None, None, &[]).await;
    let forged = app
        .get(
            "/orders",
            "of_0000000000000000000000000000000000000000000000000000000000000000",
        )
        .await;
    let not_bearer = app
        .send(
            "GET",
            "/orders",
            None,
            None,
            &[("authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l")],
        )
        .await;

    missing.assert_problem(401, "unauthorized");
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
    forged.assert_problem(401, "unauthorized");
    not_bearer.assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn bad_order_bodies_get_a_precise_400_and_change_nothing() {
    let app = TestApp::spawn().await;
    app.put_product("mug", 10).await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"products": []}), "at least one line"),
        (
            json!({"products": [{"product_id": "mug", "item_count": 0}]}),
            "products[0].item_count must be at least 1",
        ),
        (
            json!({"products": [{"product_id": "mug", "item_count": -3}]}),
            "products[0].item_count must be at least 1",
        ),
        (
            json!({"products": [{"product_id": "mug", "item_count": 1_000_001}]}),
            "at most 1000000",
        ),
        (
            json!({"products": [{"product_id": "mug", "item_count": "2"}]}),
            "products[0].item_count: invalid type: string",
        ),
        (
            json!({"products": [{"product_id": "mug", "item_count": 1}, {"product_id": "mug", "item_count": 2}]}),
            "more than one line",
        ),
        (
            json!({"products": [{"product_id": "mug", "item_count": 1}], "allow_partail": true}),
            "unknown field `allow_partail`",
        ),
        (
            json!({"products": [{"product_id": "mug", "item_count": 1}], "shipping_address": {"country": "Chile"}}),
            "ISO 3166-1",
        ),
        (json!({"items": []}), "unknown field `items`"),
        (
            json!({"products": [{"product_id": "mug", "item_count": 1}], "customer": {"name": "Ana\u{0}"}}),
            "NUL",
        ),
        (json!({}), "missing field `products`"),
        (json!([1, 2]), "invalid type"),
    ];
    for (body, expected) in cases {
        let reply = app.post("/orders", ADMIN, body.clone()).await;
        reply.assert_problem(400, "invalid-body");
        let detail = reply.body["detail"].as_str().expect("detail");
        assert!(detail.contains(expected), "{body} -> {detail}");
    }
    let unknown = app.place(ADMIN, &[("mug", 1), ("ghost", 1)]).await;
    unknown.assert_problem(400, "unknown-product");
    assert_eq!(unknown.body["products"], json!(["ghost"]));
    assert_eq!(app.stock("mug").await, (10, 0));
    assert_eq!(app.order_count().await, 0);
}

#[tokio::test]
async fn malformed_json_wrong_media_types_and_huge_bodies_are_refused() {
    let app = TestApp::spawn().await;
    let url = format!("{}/orders", app.base);
    let raw = |body: Vec<u8>, content_type: &'static str| {
        app.client
            .post(&url)
            .bearer_auth(ADMIN)
            .header("content-type", content_type)
            .body(body)
            .send()
    };

    let malformed = raw(b"{\"products\": [".to_vec(), "application/json")
        .await
        .expect("answer");
    let text = raw(b"products=1".to_vec(), "text/plain")
        .await
        .expect("answer");
    let huge = raw(vec![b' '; 5 * 1024 * 1024], "application/json")
        .await
        .expect("answer");

    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let body: Value = malformed.json().await.expect("json");
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("malformed JSON"),
        "{body}"
    );
    assert_eq!(text.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = huge.json().await.expect("json");
    assert_eq!(body["type"], "/problems/payload-too-large");
    assert_eq!(app.order_count().await, 0);
}

#[tokio::test]
async fn unknown_or_malformed_order_ids_are_404() {
    let app = TestApp::spawn().await;
    app.get("/orders/ord_01ARZ3NDEKTSV4RRFFQ69G5FAV", ADMIN)
        .await
        .assert_problem(404, "not-found");
    app.get("/orders/not-an-id", ADMIN)
        .await
        .assert_problem(404, "not-found");
    app.send(
        "DELETE",
        "/orders/ord_01ARZ3NDEKTSV4RRFFQ69G5FAV",
        Some(ADMIN),
        None,
        &[],
    )
    .await
    .assert_problem(404, "not-found");
    app.get("/nowhere", ADMIN)
        .await
        .assert_problem(404, "not-found");
    app.send("PUT", "/orders", Some(ADMIN), None, &[])
        .await
        .assert_problem(405, "method-not-allowed");
}

#[tokio::test]
async fn api_keys_need_the_store_and_customer_their_role_implies() {
    let app = TestApp::spawn().await;

    app.post("/api-keys", ADMIN, json!({"role": "customer"}))
        .await
        .assert_problem(400, "invalid-body");
    app.post(
        "/api-keys",
        ADMIN,
        json!({"role": "store", "store_id": "nowhere"}),
    )
    .await
    .assert_problem(404, "not-found");
    app.post("/api-keys", ADMIN, json!({"role": "root"}))
        .await
        .assert_problem(400, "invalid-body");
    let made = app.post("/api-keys", ADMIN, json!({"role": "store"})).await;

    assert_eq!(made.status, StatusCode::CREATED);
    assert_eq!(made.body["store_id"], "default");
    let token = made.body["token"].as_str().expect("token");
    assert!(token.starts_with("of_") && token.len() == 67);
    let store_made = app
        .post(
            "/api-keys",
            token,
            json!({"role": "customer", "customer_id": "ana"}),
        )
        .await;
    assert_eq!(store_made.status, StatusCode::CREATED);
    app.post("/api-keys", token, json!({"role": "admin"}))
        .await
        .assert_problem(403, "forbidden");
}

#[tokio::test]
async fn probes_metrics_and_problem_pages_answer() {
    let app = TestApp::spawn().await;
    app.put_product("mug", 1).await;
    app.place(ADMIN, &[("mug", 1)]).await;
    app.place(ADMIN, &[("mug", 1)]).await;

    let health = app.send("GET", "/healthz", None, None, &[]).await;
    let ready = app.send("GET", "/readyz", None, None, &[]).await;
    let metrics = app.send("GET", "/metrics", None, None, &[]).await;
    let problem = app
        .send("GET", "/problems/insufficient-stock", None, None, &[])
        .await;

    assert_eq!(health.status, StatusCode::OK);
    assert!(health.header("x-request-id").is_some());
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body["ready"], true);
    let text = metrics.body.as_str().expect("text");
    assert!(text.contains("orderflow_orders_placed_total 1"), "{text}");
    assert!(
        text.contains("orderflow_reservations_refused_total 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "orderflow_http_requests_total{method=\"POST\",route=\"/orders\",status=\"201\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("orderflow_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert_eq!(problem.status, StatusCode::OK);
    assert!(
        problem
            .body
            .as_str()
            .expect("html")
            .contains("Insufficient stock")
    );
}

#[tokio::test]
async fn the_openapi_document_covers_every_route_and_the_docs_page_needs_no_cdn() {
    let app = TestApp::spawn().await;

    let spec = app.send("GET", "/openapi.json", None, None, &[]).await;
    let docs = app
        .client
        .get(format!("{}/docs/", app.base))
        .send()
        .await
        .expect("answer");

    assert_eq!(spec.status, StatusCode::OK);
    let paths = spec.body["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/orders", "post"),
        ("/orders", "get"),
        ("/orders/{order_id}", "get"),
        ("/orders/{order_id}", "patch"),
        ("/orders/{order_id}", "delete"),
        ("/products", "get"),
        ("/products/{product_id}", "put"),
        ("/products/{product_id}", "get"),
        ("/products/{product_id}/stock", "post"),
        ("/stores", "post"),
        ("/stores/{store_id}", "get"),
        ("/api-keys", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    let place = &paths["/orders"]["post"]["responses"];
    for status in ["201", "400", "401", "409", "413", "422"] {
        assert!(place.get(status).is_some(), "POST /orders lacks {status}");
    }
    assert_eq!(docs.status(), StatusCode::OK);
    let html = docs.text().await.expect("html");
    assert!(
        !html.contains("https://"),
        "the docs page must not load anything from a CDN"
    );
}
