// The part of wink-pos-tagger's API kd-ts uses (the package ships no types).
declare module 'wink-pos-tagger' {
  interface WinkTaggedToken {
    value: string;
    tag: string;
    pos: string;
  }
  interface WinkPosTagger {
    tagRawTokens(tokens: string[]): WinkTaggedToken[];
  }
  function posTagger(): WinkPosTagger;
  export default posTagger;
}
