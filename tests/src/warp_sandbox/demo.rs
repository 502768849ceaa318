//! Realistic customers for seeding tests and the demo, the same on every
//! run.

use serde_json::{Value, json};

use super::time::rfc3339;

/// The HubSpot company id demo customer `n` names: `18476215990 + n`.
pub fn demo_company_id(n: usize) -> String {
    (18_476_215_990 + n as u64).to_string()
}

/// The company id demo customer `n` names in a book of `size` customers
/// numbered from `first` whose companies were created in another order
/// than WARP lists them: the demo's own ids, permuted by a stride near
/// the golden section of the book and prime to its size (so a bijection).
/// Neighbours in WARP's list land far apart, and any run of them, a page
/// of WARP's say, spreads evenly over HubSpot's ids.
pub fn shuffled_company_id(n: usize, first: usize, size: usize) -> String {
    fn gcd(a: u64, b: u64) -> u64 {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    let size = size.max(1) as u64;
    let mut step = (size as f64 * 0.618_034) as u64;
    while gcd(step, size) != 1 {
        step += 1;
    }
    let slot = ((n - first) as u64 * step) % size;
    demo_company_id(first + slot as usize)
}

/// A realistic customer number `n` (deterministic, including its `id`), for
/// seeding tests and the demo. Its HubSpot company id is
/// [`demo_company_id`]`(n)`.
pub fn demo_customer(n: usize) -> Value {
    const NAMES: [&str; 16] = [
        "Acme",
        "Globex",
        "Initech",
        "Umbrella",
        "Stark",
        "Wayne",
        "Hooli",
        "Vandelay",
        "Soylent",
        "Cyberdyne",
        "Tyrell",
        "Wonka",
        "Oceanic",
        "Aperture",
        "Pied Piper",
        "Dunder",
    ];
    const KINDS: [&str; 8] = [
        "Corp",
        "Telecom",
        "Networks",
        "Logistics",
        "Health",
        "Labs",
        "Holdings",
        "Media",
    ];
    const PLACES: [(&str, &str, &str, &str); 8] = [
        ("Denver", "CO", "80202", "303"),
        ("Austin", "TX", "78701", "512"),
        ("Seattle", "WA", "98101", "206"),
        ("Chicago", "IL", "60601", "312"),
        ("Boston", "MA", "02108", "617"),
        ("Atlanta", "GA", "30303", "404"),
        ("Phoenix", "AZ", "85004", "602"),
        ("Portland", "OR", "97204", "503"),
    ];
    const PEOPLE: [(&str, &str); 8] = [
        ("Ada", "Lovelace"),
        ("Grace", "Hopper"),
        ("Alan", "Turing"),
        ("Katherine", "Johnson"),
        ("Edsger", "Dijkstra"),
        ("Barbara", "Liskov"),
        ("Donald", "Knuth"),
        ("Frances", "Allen"),
    ];
    // Mostly active, like a real book of business.
    const STATUS_MIX: [&str; 10] = [
        "ACTIVE",
        "ACTIVE",
        "ACTIVE",
        "ACTIVE",
        "ACTIVE",
        "ACTIVE",
        "ACTIVE",
        "SUSPENDED",
        "PENDING",
        "CLOSED",
    ];
    const TERMS: [&str; 4] = ["NET15", "NET30", "NET45", "NET60"];
    const TIERS: [&str; 4] = ["BRONZE", "SILVER", "GOLD", "PLATINUM"];

    let name = NAMES[n % NAMES.len()];
    let mut company_name = format!("{name} {}", KINDS[(n / NAMES.len()) % KINDS.len()]);
    let cycle = n / (NAMES.len() * KINDS.len());
    if cycle > 0 {
        company_name.push_str(&format!(" {}", cycle + 1));
    }
    let domain = format!("{}{n}.example", name.to_lowercase().replace(' ', ""));
    let (city, state, zip, area) = PLACES[n % PLACES.len()];
    let (first, last) = PEOPLE[(n / 3) % PEOPLE.len()];
    let limit_cents = 100_000 * (1 + n as u64 % 25);
    let balance_cents = (n as u64 * 7_919 * 13) % limit_cents;
    // Created one every eight hours from 6 Jan 2025, changed 1-30 days later.
    let created_ms = 1_736_121_600_000 + n as i64 * 86_400_000 / 3 + (n as i64 % 7) * 3_600_000;
    let updated_ms = created_ms + (1 + n as i64 % 30) * 86_400_000;
    json!({
        "id": demo_id(n),
        "ban": format!("ZT-48739{n:04}"),
        "company_name": company_name,
        "status": STATUS_MIX[n % STATUS_MIX.len()],
        "credit_limit": money(limit_cents),
        "current_balance": money(balance_cents),
        "payment_terms": TERMS[n % TERMS.len()],
        "tier": TIERS[(n / 2) % TIERS.len()],
        "services": {
            "voice": n % 4 != 3,
            "messaging": n.is_multiple_of(3),
            "data": n.is_multiple_of(2),
        },
        "contact": {
            "name": format!("{first} {last}"),
            "email": format!("{}.{}@{domain}", first.to_lowercase(), last.to_lowercase()),
            "phone": format!("+1{area}555{:04}", n % 10_000),
        },
        "address": {
            "line1": format!("{} Main St", 100 + (n * 37) % 900),
            "line2": n.is_multiple_of(5).then(|| format!("Suite {}", 100 + n % 400)),
            "city": city,
            "state": state,
            "postal_code": zip,
            "country": "US",
        },
        "external_ids": {"hubspot_company_id": demo_company_id(n)},
        "created_at": rfc3339(created_ms, false),
        "updated_at": rfc3339(updated_ms, false),
        "etag": "\"1\"",
    })
}

/// A uuid v4 derived from `n`, so the demo's ids survive a restart.
fn demo_id(n: usize) -> String {
    let mut bytes = [0u8; 16];
    let (hi, lo) = bytes.split_at_mut(8);
    hi.copy_from_slice(&splitmix64(n as u64).to_be_bytes());
    lo.copy_from_slice(&splitmix64(!(n as u64)).to_be_bytes());
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn money(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::warp_sandbox::shape::{READ_ONLY, check_patch};

    #[test]
    fn demo_customers_are_complete_and_distinct() {
        let a = demo_customer(12);
        assert_eq!(a["ban"], "ZT-487390012");
        assert_eq!(a["external_ids"]["hubspot_company_id"], "18476216002");
        assert_eq!(a, demo_customer(12));
        assert_ne!(a["id"], demo_customer(13)["id"]);
        let mut patch = a.as_object().cloned().unwrap_or_default();
        patch.retain(|k, _| !READ_ONLY.contains(&k.as_str()));
        assert!(check_patch(&patch).is_ok(), "{patch:?}");
    }

    #[test]
    fn shuffled_ids_are_the_demo_ids_each_once_and_a_page_spans_the_book() {
        for (first, size) in [(0, 1), (1, 2), (0, 7), (0, 1_000), (1, 100_000)] {
            let ids: Vec<u64> = (first..first + size)
                .map(|n| shuffled_company_id(n, first, size).parse().unwrap())
                .collect();
            let distinct: HashSet<u64> = ids.iter().copied().collect();
            assert_eq!(distinct.len(), size, "size {size}");
            let lowest = 18_476_215_990 + first as u64;
            assert!(
                ids.iter()
                    .all(|&id| (lowest..lowest + size as u64).contains(&id))
            );
            if size >= 1_000 {
                // Each page of a hundred reaches into nine tenths of the book.
                for page in ids.chunks(100) {
                    let span = page.iter().max().unwrap() - page.iter().min().unwrap();
                    assert!(span * 10 >= size as u64 * 9, "size {size}: span {span}");
                }
            }
        }
    }
}
