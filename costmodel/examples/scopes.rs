//! Prints the scope (the architecture parameters deciding its cost), exit segment and
//! enclosing gates of every node of a built-in space's supernet with a scope of 2 or more:
//! the pairwise terms an additive lookup table misses.
fn main() {
    let Some(name) = std::env::args().nth(1) else {
        eprintln!("usage: scopes SPACE");
        std::process::exit(2);
    };
    let space = match nasc_ir::spaces::lookup(&name) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let params = space.supernet().params();
    let keys = nasc_costmodel::table::analyse(space.supernet()).expect("built-in spaces analyse");
    for (node, key) in &keys {
        if key.scope.len() >= 2 {
            let names: Vec<&str> = key.scope.iter().map(|&p| params[p].name.as_str()).collect();
            println!("{node}: {}", names.join(" × "));
        }
    }
}
