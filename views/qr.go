package views

import (
	"context"
	"image/color"
	"io"

	"github.com/a-h/templ"
	goqr "github.com/piglig/go-qr"
)

// qrCode renders text as a QR code in inline SVG (server-side, no script):
// medium error correction survives a projector's glare and a crease, and
// the quiet zone of four modules is part of the image.
func qrCode(text string) templ.Component {
	return templ.ComponentFunc(func(ctx context.Context, w io.Writer) error {
		qr, err := goqr.EncodeText(text, goqr.Medium)
		if err != nil {
			return err
		}
		const scale = 8
		cfg := goqr.NewQrCodeImgConfig(scale, 4*scale, goqr.WithOptimalSVG(),
			goqr.WithLight(color.White), goqr.WithDark(color.Black))
		return qr.WriteAsSVG(cfg, w)
	})
}
