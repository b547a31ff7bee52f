//! PrestaShop: the webservice's XML documents, and the envelope the pull connector assembles.
//!
//! The fixtures hold an order and an address but not the country, state, currency, customer
//! or carrier resources they refer to, so the tests supply plausible values: `id_country` 8 is
//! France in a default PrestaShop install (`FR`), `id_currency` 1 its default currency (`EUR`),
//! and `id_state` 0 means no state. The order-6 listing comes without its address, so the tests
//! write one (a Spanish one, since the order is in Spanish with 21 % VAT).

mod common;

use common::fixture;
use orderflow_connectors::parse::prestashop::{
    self, AddressFields, CustomerFields, ListedOrder, OrderRefs, Related,
};
use orderflow_connectors::{IncomingOrder, ParseError, PlatformState};
use proptest::prelude::*;
use proptest::sample::Index;
use time::macros::datetime;

const ORDER_1: &str = fixture!("prestashop/order_1_axelor_fixture.xml");
const ADDRESS_1: &str = fixture!("prestashop/address_1_axelor_fixture.xml");
const ORDERS_FULL_6: &str = fixture!("prestashop/orders_display_full_order_6.xml");

/// Written for these tests: the order-6 listing has no address of its own.
const ADDRESS_SPAIN: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<prestashop xmlns:xlink="http://www.w3.org/1999/xlink">
    <address>
        <id><![CDATA[12]]></id>
        <id_customer xlink:href="https://testa.com/api/customers/6"><![CDATA[6]]></id_customer>
        <id_country xlink:href="https://testa.com/api/countries/6"><![CDATA[6]]></id_country>
        <id_state xlink:href="https://testa.com/api/states/339"><![CDATA[339]]></id_state>
        <lastname>
            <![CDATA[ García ]]>
        </lastname>
        <firstname><![CDATA[Lucía]]></firstname>
        <address1><![CDATA[Calle Mayor 5]]></address1>
        <address2><![CDATA[	3º B	]]></address2>
        <postcode><![CDATA[28013]]></postcode>
        <city><![CDATA[Madrid]]></city>
        <phone><![CDATA[910000000]]></phone>
        <phone_mobile><![CDATA[600000000]]></phone_mobile>
    </address>
</prestashop>
"#;

/// Written for these tests: a customer resource as `/api/customers/{id}` returns it.
const CUSTOMER_6: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<prestashop xmlns:xlink="http://www.w3.org/1999/xlink">
<customer>
	<id><![CDATA[6]]></id>
	<lastname><![CDATA[García López]]></lastname>
	<firstname><![CDATA[Lucía]]></firstname>
	<email><![CDATA[lucia@example.com]]></email>
	<passwd><![CDATA[$2y$10$hash]]></passwd>
</customer>
</prestashop>
"#;

fn related_1() -> Related {
    Related {
        address: prestashop::address_fields(ADDRESS_1).expect("the address fixture reads"),
        customer: None,
        country_iso: "FR".into(),
        state_iso: None,
        currency_iso: "EUR".into(),
        carrier: None,
    }
}

fn related_6() -> Related {
    Related {
        address: prestashop::address_fields(ADDRESS_SPAIN).expect("the address reads"),
        customer: Some(prestashop::customer_fields(CUSTOMER_6).expect("the customer reads")),
        country_iso: "ES".into(),
        state_iso: Some("M".into()),
        currency_iso: "EUR".into(),
        carrier: Some("Correos Express".into()),
    }
}

fn order_6() -> IncomingOrder {
    prestashop::parse_parts(ORDERS_FULL_6, &related_6()).expect("the order-6 listing parses")
}

/// The XML with the text of the first `<name …>` element replaced.
fn with_field(xml: &str, name: &str, text: &str) -> String {
    let open = xml
        .find(&format!("<{name}>"))
        .or_else(|| xml.find(&format!("<{name} ")))
        .expect("the element is there");
    let start = open + xml[open..].find('>').expect("a tag") + 1;
    let end = start
        + xml[start..]
            .find(&format!("</{name}>"))
            .expect("a closing tag");
    format!("{}{}{}", &xml[..start], text, &xml[end..])
}

fn envelope(order: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "order": order,
        "address": ADDRESS_1,
        "customer": null,
        "country_iso": "FR",
        "state_iso": null,
        "currency_iso": "EUR",
        "carrier": null,
    }))
    .expect("serialisable")
}

#[test]
fn the_order_1_envelope_parses() {
    let order = prestashop::parse(&envelope(ORDER_1)).expect("the envelope parses");
    assert_eq!(
        order,
        prestashop::parse_parts(ORDER_1, &related_1()).expect("parses")
    );
    insta::assert_json_snapshot!("order_1_with_address_1", order);
}

#[test]
fn the_display_full_listing_of_order_6_parses() {
    insta::assert_json_snapshot!("orders_display_full_order_6", order_6());
}

#[test]
fn an_envelope_missing_a_key_names_it() {
    let body = serde_json::to_vec(&serde_json::json!({
        "order": ORDER_1, "address": ADDRESS_1, "currency_iso": "EUR"
    }))
    .expect("serialisable");
    assert_eq!(
        prestashop::parse(&body),
        Err(ParseError::missing("country_iso"))
    );
}

#[test]
fn prestashop_six_place_prices_round_to_cents() {
    let order = order_6();
    // unit_price_tax_incl 9.999999
    assert_eq!(order.lines[0].unit_price_minor, 1000);
    let xml = with_field(ORDERS_FULL_6, "unit_price_tax_incl", "<![CDATA[8.264462]]>");
    let order = prestashop::parse_parts(&xml, &related_6()).expect("parses");
    assert_eq!(order.lines[0].unit_price_minor, 826);
    let xml = with_field(ORDERS_FULL_6, "unit_price_tax_incl", "1.005000");
    let order = prestashop::parse_parts(&xml, &related_6()).expect("parses");
    assert_eq!(order.lines[0].unit_price_minor, 101);
}

#[test]
fn prestashop_totals_are_tax_inclusive_with_the_contained_tax_beside_them() {
    let totals = order_6().totals;
    assert_eq!(totals.items_minor, 1000);
    assert_eq!(totals.shipping_minor, 623);
    // total_paid_tax_incl 16.23 − total_paid_tax_excl 13.41
    assert_eq!(totals.tax_minor, 282);
    assert_eq!(totals.discount_minor, 0);
    assert_eq!(totals.total_minor, 1623);
    assert_eq!(
        totals.items_minor + totals.shipping_minor,
        totals.total_minor
    );
}

#[test]
fn a_prestashop_zero_date_means_none() {
    let xml = with_field(ORDER_1, "date_upd", "<![CDATA[0000-00-00 00:00:00]]>");
    let order = prestashop::parse_parts(&xml, &related_1()).expect("parses");
    assert_eq!(order.created_at, datetime!(2018-02-13 09:36:21 UTC));
    assert_eq!(order.updated_at, order.created_at);
    let xml = with_field(ORDER_1, "date_add", "<![CDATA[0000-00-00 00:00:00]]>");
    assert_eq!(
        prestashop::parse_parts(&xml, &related_1()),
        Err(ParseError::missing("order.date_add"))
    );
}

#[test]
fn pretty_printed_cdata_values_are_trimmed() {
    let order = order_6();
    assert_eq!(order.external_id, "6");
    assert_eq!(order.number.as_deref(), Some("KBHVCMDMO"));
    assert_eq!(order.lines[0].sku.as_deref(), Some("734/7"));
    assert_eq!(
        order.lines[0].name.as_deref(),
        Some("Chaleco naranja fluoresente Talla : L")
    );
    let address = order.shipping_address.expect("an address");
    assert_eq!(address.name.as_deref(), Some("Lucía García"));
    assert_eq!(address.line2.as_deref(), Some("3º B"));
}

#[test]
fn a_combination_is_named_by_product_and_attribute_id() {
    assert_eq!(order_6().lines[0].item_id.as_deref(), Some("121:521"));
    let order = prestashop::parse_parts(ORDER_1, &related_1()).expect("parses");
    assert_eq!(order.lines[0].item_id.as_deref(), Some("24"));
}

#[test]
fn prestashop_default_order_states_map_to_what_intake_acts_on() {
    for (id, expected) in [
        ("1", PlatformState::Pending),
        ("2", PlatformState::Paid),
        ("3", PlatformState::Paid),
        ("4", PlatformState::Fulfilled),
        ("5", PlatformState::Fulfilled),
        ("6", PlatformState::Cancelled),
        ("7", PlatformState::Refunded),
        ("8", PlatformState::Cancelled),
        ("9", PlatformState::Paid),
        ("10", PlatformState::Pending),
        ("11", PlatformState::Paid),
        ("12", PlatformState::Pending),
        ("13", PlatformState::Pending),
        ("42", PlatformState::Pending),
    ] {
        let xml = with_field(ORDER_1, "current_state", &format!("<![CDATA[{id}]]>"));
        let order = prestashop::parse_parts(&xml, &related_1()).expect("parses");
        assert_eq!(order.state, expected, "state {id}");
        assert_eq!(order.platform_status, format!("state {id}"));
    }
}

#[test]
fn the_customer_comes_from_the_customer_resource_else_the_address() {
    let customer = order_6().customer;
    assert_eq!(customer.name.as_deref(), Some("Lucía García López"));
    assert_eq!(customer.email.as_deref(), Some("lucia@example.com"));
    assert_eq!(customer.phone.as_deref(), Some("600000000"));
    let customer = prestashop::parse_parts(ORDER_1, &related_1())
        .expect("parses")
        .customer;
    assert_eq!(customer.name.as_deref(), Some("Kévin GUILLOT"));
    assert_eq!(customer.email, None);
    assert_eq!(customer.phone, None);
}

#[test]
fn a_country_iso_that_is_not_alpha2_is_refused_naming_it() {
    let related = Related {
        country_iso: "FRA".into(),
        ..related_1()
    };
    assert!(matches!(
        prestashop::parse_parts(ORDER_1, &related),
        Err(ParseError::Invalid { field, .. }) if field == "country_iso"
    ));
}

#[test]
fn an_order_without_rows_is_refused() {
    let xml = with_field(ORDER_1, "associations", "");
    assert_eq!(
        prestashop::parse_parts(&xml, &related_1()),
        Err(ParseError::missing(
            "order.associations.order_rows.order_row"
        ))
    );
}

#[test]
fn a_listing_of_several_full_orders_is_refused_by_parse_parts() {
    let start = ORDERS_FULL_6.find("<order>").expect("an order");
    let end = ORDERS_FULL_6.find("</order>").expect("an order") + "</order>".len();
    let order = &ORDERS_FULL_6[start..end];
    let two = ORDERS_FULL_6.replacen(order, &format!("{order}{order}"), 1);
    assert!(matches!(
        prestashop::parse_parts(&two, &related_6()),
        Err(ParseError::Invalid { field, .. }) if field == "orders"
    ));
}

#[test]
fn money_that_is_not_a_decimal_is_refused_naming_the_field() {
    let xml = with_field(ORDER_1, "total_paid", "<![CDATA[180,00]]>");
    assert!(matches!(
        prestashop::parse_parts(&xml, &related_1()),
        Err(ParseError::Invalid { field, .. }) if field == "order.total_paid"
    ));
}

#[test]
fn a_document_type_declaration_is_refused() {
    let xml = format!(
        "<!DOCTYPE lolz [<!ENTITY lol \"lol\">]>{}",
        ORDER_1.trim_start_matches(r#"<?xml version="1.0" encoding="UTF-8"?>"#)
    );
    assert!(matches!(
        prestashop::parse_parts(&xml, &related_1()),
        Err(ParseError::Xml(_))
    ));
}

#[test]
fn a_document_that_is_not_a_prestashop_one_is_refused() {
    assert!(matches!(
        prestashop::parse_parts("<order><id>1</id></order>", &related_1()),
        Err(ParseError::Invalid { field, .. }) if field == "prestashop"
    ));
}

#[test]
fn the_order_refs_name_what_the_connector_fetches() {
    assert_eq!(
        prestashop::order_refs(ORDER_1),
        Ok(OrderRefs {
            id: "1".into(),
            address_delivery: Some("12".into()),
            customer: Some("25".into()),
            currency: Some("1".into()),
            carrier: Some("1".into()),
        })
    );
    let refs = prestashop::order_refs(ORDERS_FULL_6).expect("reads");
    assert_eq!(refs.carrier.as_deref(), Some("14"));
}

#[test]
fn the_address_fixture_reads_with_no_state() {
    assert_eq!(
        prestashop::address_fields(ADDRESS_1),
        Ok(AddressFields {
            id: Some("1".into()),
            id_customer: Some("15".into()),
            id_country: Some("8".into()),
            id_state: None,
            firstname: Some("Kévin".into()),
            lastname: Some("GUILLOT".into()),
            company: Some("ESL Banking".into()),
            address1: Some("49 RUE DES GENOTTES".into()),
            address2: None,
            postcode: Some("95000".into()),
            city: Some("CERGY".into()),
            phone: None,
            phone_mobile: None,
        })
    );
}

#[test]
fn the_customer_resource_reads() {
    assert_eq!(
        prestashop::customer_fields(CUSTOMER_6),
        Ok(CustomerFields {
            id: Some("6".into()),
            email: Some("lucia@example.com".into()),
            firstname: Some("Lucía".into()),
            lastname: Some("García López".into()),
        })
    );
}

#[test]
fn a_resource_field_reads_plain_and_multilingual_values() {
    let country = r#"<prestashop xmlns:xlink="http://www.w3.org/1999/xlink"><country>
        <id><![CDATA[8]]></id>
        <iso_code><![CDATA[FR]]></iso_code>
        <name><language id="1" xlink:href="http://shop/api/languages/1"><![CDATA[France]]></language></name>
    </country></prestashop>"#;
    assert_eq!(
        prestashop::resource_field(country, "iso_code"),
        Ok(Some("FR".into()))
    );
    assert_eq!(
        prestashop::resource_field(country, "name"),
        Ok(Some("France".into()))
    );
    assert_eq!(prestashop::resource_field(country, "call_prefix"), Ok(None));
    let carrier = "<prestashop><carrier><name>  Correos Express </name></carrier></prestashop>";
    assert_eq!(
        prestashop::resource_field(carrier, "name"),
        Ok(Some("Correos Express".into()))
    );
}

#[test]
fn a_display_full_listing_gives_ids_and_update_times() {
    assert_eq!(
        prestashop::order_ids_and_dates(ORDERS_FULL_6),
        Ok(vec![ListedOrder {
            id: "6".into(),
            date_upd: "2020-10-13 19:54:39".into(),
        }])
    );
}

#[test]
fn a_display_id_and_date_upd_listing_reads_in_order() {
    let listing = r#"<?xml version="1.0" encoding="UTF-8"?>
<prestashop xmlns:xlink="http://www.w3.org/1999/xlink">
<orders>
	<order><id><![CDATA[7]]></id><date_upd><![CDATA[2024-01-02 10:00:00]]></date_upd></order>
	<order id="9" xlink:href="http://shop/api/orders/9"><date_upd><![CDATA[2024-01-03 11:30:00]]></date_upd></order>
</orders>
</prestashop>"#;
    let listed = prestashop::order_ids_and_dates(listing).expect("reads");
    let pairs: Vec<_> = listed
        .iter()
        .map(|o| (o.id.as_str(), o.date_upd.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [("7", "2024-01-02 10:00:00"), ("9", "2024-01-03 11:30:00")]
    );
}

#[test]
fn an_empty_listing_is_empty_and_a_bad_date_is_refused() {
    assert_eq!(
        prestashop::order_ids_and_dates("<prestashop><orders/></prestashop>"),
        Ok(vec![])
    );
    let bad = "<prestashop><orders><order><id>1</id><date_upd>yesterday</date_upd></order></orders></prestashop>";
    assert!(matches!(
        prestashop::order_ids_and_dates(bad),
        Err(ParseError::Invalid { field, .. }) if field == "orders.order[0].date_upd"
    ));
    let undated = r#"<prestashop><orders><order id="1"/></orders></prestashop>"#;
    assert_eq!(
        prestashop::order_ids_and_dates(undated),
        Err(ParseError::missing("orders.order[0].date_upd"))
    );
}

fn exercise_xml(xml: &str, related: &Related) {
    let _ = prestashop::parse_parts(xml, related);
    let _ = prestashop::order_refs(xml);
    let _ = prestashop::order_ids_and_dates(xml);
    let _ = prestashop::address_fields(xml);
    let _ = prestashop::customer_fields(xml);
    let _ = prestashop::resource_field(xml, "iso_code");
    let _ = prestashop::parse(&envelope(xml));
}

const FIXTURES: [&str; 5] = [ORDER_1, ADDRESS_1, ORDERS_FULL_6, ADDRESS_SPAIN, CUSTOMER_6];

/// A value of the kinds that trip parsers, for the text of one element.
fn odd_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("0".to_owned()),
        Just("-1".to_owned()),
        Just("0000-00-00 00:00:00".to_owned()),
        Just("99999999999999999999.999999".to_owned()),
        Just("-92233720368547758.08".to_owned()),
        Just("4294967296".to_owned()),
        Just("1e3".to_owned()),
        Just("<![CDATA[]]>".to_owned()),
        Just("<language id=\"1\">x</language>".to_owned()),
        "[^<&]{0,16}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in common::arbitrary_bytes()) {
        let _ = prestashop::parse(&bytes);
        exercise_xml(&String::from_utf8_lossy(&bytes), &related_1());
    }

    #[test]
    fn fixtures_with_mutated_bytes_never_panic(
        fixture in any::<Index>(),
        edits in common::edits(),
    ) {
        let bytes = common::mutate(fixture.get(&FIXTURES[..]).as_bytes(), &edits);
        let xml = String::from_utf8_lossy(&bytes);
        exercise_xml(&xml, &related_6());
        // The same edits made to the envelope's JSON text rather than to the XML inside it.
        let _ = prestashop::parse(&common::mutate(&envelope(ORDER_1), &edits));
    }

    #[test]
    fn the_order_with_an_odd_value_in_any_element_never_panics(
        fixture in any::<Index>(),
        at in any::<Index>(),
        text in odd_text(),
    ) {
        let xml = *fixture.get(&[ORDER_1, ORDERS_FULL_6][..]);
        let names: Vec<&str> = xml
            .match_indices("</")
            .filter_map(|(i, _)| xml[i + 2..].split('>').next())
            .collect();
        let name = *at.get(&names);
        let edited = with_field(xml, name, &text);
        exercise_xml(&edited, &related_6());
    }
}

#[test]
fn a_deeply_nested_document_is_read_without_exhausting_the_stack() {
    let depth = 100_000;
    let xml = format!(
        "<prestashop><address><firstname>{}x{}</firstname></address></prestashop>",
        "<language>".repeat(depth),
        "</language>".repeat(depth)
    );
    let _ = prestashop::address_fields(&xml);
    let _ = prestashop::parse_parts(&xml, &related_1());
    let _ = prestashop::order_ids_and_dates(&xml);
}
