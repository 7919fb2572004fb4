// The part of the age-encryption package (typage) that the pages use:
// scripts/build-agejs.sh bundles it into adapters/web/static/age.js.
export { Encrypter, Decrypter, armor, generateX25519Identity, identityToRecipient } from "age-encryption";
