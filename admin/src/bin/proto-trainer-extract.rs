//! `proto-trainer-extract`: the document extraction child alone, for a deployment that wants it
//! as its own executable (`EXTRACT_BIN`) and for the admin crate's tests, which run the service
//! in-process and so cannot re-execute `proto-trainer extract`. Same protocol as
//! `proto-trainer extract` ([`admin::sandbox`]); any arguments are ignored.

fn main() {
    admin::sandbox::child_main()
}
