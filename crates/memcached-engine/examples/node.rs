//! Standalone memcached-compatible node: `node --port 11211 --memory-mb 1024 [--version 1.6.18]
//! [--max-item-size BYTES] [--no-evict]`. Runs until killed.

fn main() -> std::io::Result<()> {
    let mut port: u16 = 11211;
    let mut cfg = memcached_engine::Config::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_default();
        match a.as_str() {
            "--port" => port = val().parse().unwrap_or(11211),
            "--memory-mb" => cfg.memory_limit = val().parse::<u64>().unwrap_or(64) * 1024 * 1024,
            "--max-item-size" => cfg.max_item_size = val().parse().unwrap_or(1024 * 1024),
            "--version" => cfg.version = val(),
            "--no-evict" => cfg.evict = false,
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
    let node = memcached_engine::spawn(listener, cfg)?;
    eprintln!("memcached-engine node listening on {}", node.local_addr());
    loop {
        std::thread::park();
    }
}
