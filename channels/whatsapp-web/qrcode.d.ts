// The slice of `qrcode` (no bundled types, no @types package installed) this channel uses.
declare module 'qrcode' {
  interface QRCodeRenderOptions {
    type?: 'terminal' | 'utf8' | 'svg' | 'png';
    small?: boolean;
    margin?: number;
    width?: number;
    errorCorrectionLevel?: 'L' | 'M' | 'Q' | 'H';
  }
  const QRCode: {
    toString(text: string, options?: QRCodeRenderOptions): Promise<string>;
    toBuffer(text: string, options?: QRCodeRenderOptions): Promise<Buffer>;
  };
  export default QRCode;
}
