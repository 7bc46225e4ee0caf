//! A shared counter on keel kv: increments it with compare-and-set (safe with many clients at once), logs each
//! increment with an append, and lists the keys under `demo/`.
//!
//! ```sh
//! keel kv local &                                   # a 3-node cluster on 127.0.0.1:7101..=7103
//! cargo run -p keel-kv-client --example counter     # or: -- http://host:port,http://host:port
//! ```
use keel_kv_client::{Client, ClientOptions, Error, LOCAL_ENDPOINTS_DEFAULT};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let endpoints = std::env::args().nth(1).unwrap_or_else(|| LOCAL_ENDPOINTS_DEFAULT.to_string());
    let mut client = Client::new(endpoints.split(',').map(str::to_owned).collect(), ClientOptions::default())?;

    for _ in 0..3 {
        let value = increment(&mut client, "demo/counter").await?;
        client.append("demo/log", &format!("{value};")).await?;
        println!("counter is now {value}");
    }

    let page = client.list("demo/", None, 100).await?;
    for listed in &page.keys {
        println!("{} (last modified at index {})", listed.key, listed.index);
    }
    Ok(())
}

/// Reads the counter and writes counter + 1 only if nobody changed it in between; on a race, tries again.
async fn increment(client: &mut Client, key: &str) -> Result<u64, Error> {
    loop {
        let (current, index) = match client.get(key).await? {
            Some(versioned) => (versioned.value.parse::<u64>().unwrap_or(0), versioned.index),
            None => (0, 0),
        };
        match client.put_if(key, &(current + 1).to_string(), index).await {
            Ok(_) => return Ok(current + 1),
            Err(Error::IndexMismatch { .. }) => continue,
            Err(other) => return Err(other),
        }
    }
}
