//! Print the syscall table (what `mantle syscalls` shows) and the features report.
fn main() {
    print!("{}", sentry::table::render());
    println!("{}", sentry::features::probe());
}
