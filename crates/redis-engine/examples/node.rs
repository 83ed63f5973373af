//! A standalone node: `cargo run --release -p redis-engine --example node -- --port 7000 [--maxmemory 100mb]`.

#[global_allocator]
static ALLOC: redis_engine::CountingAlloc = redis_engine::CountingAlloc;

fn main() -> std::io::Result<()> {
    let mut port = 6379u16;
    let mut cfg = redis_engine::Config {
        allow_restricted_commands: true,
        ..Default::default()
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--port" => port = v.parse().unwrap_or(port),
            "--maxmemory" => cfg.maxmemory = redis_engine::parse_memory(&v).unwrap_or(0),
            "--maxmemory-policy" => cfg.maxmemory_policy = v,
            "--requirepass" => cfg.password = Some(v),
            "--restricted" => {
                cfg.allow_restricted_commands = false;
                i -= 1;
            }
            other => {
                eprintln!("unknown option {other}");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    let sock = std::net::TcpListener::bind(("127.0.0.1", port))?;
    let h = redis_engine::spawn(sock, cfg)?;
    eprintln!("redis-engine node listening on {}", h.local_addr());
    loop {
        std::thread::park();
    }
}
