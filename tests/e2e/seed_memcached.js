// The seed's Node.js session example, unchanged but for the endpoint (argv[2]).
const Memcached = require("memcached");
const memcached = new Memcached(process.argv[2]);
memcached.set("session:123", "active", 600, (err) => {
  if (err) { console.error(err); process.exit(1); }
  else console.log("Session stored");
  memcached.get("session:123", (err, data) => {
    if (err) { console.error(err); process.exit(1); }
    else console.log("Fetched session:", data);
    memcached.end();
  });
});
