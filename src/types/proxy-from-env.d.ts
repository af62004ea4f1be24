// proxy-from-env 2 ships no types: its one function, as its documentation gives it.
declare module 'proxy-from-env' {
  /** The proxy URL for a request to `url` per HTTP(S)_PROXY, ALL_PROXY and NO_PROXY, or '' for none. */
  export function getProxyForUrl(url: string | URL): string;
}
