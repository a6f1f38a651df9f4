package zzshot

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

func TestShot(t *testing.T) {
	base := os.Getenv("BASE")
	tok, _ := os.ReadFile("/tmp/me/data/admin.token")
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath("/usr/lib/chromium/chromium"), chromedp.NoSandbox, chromedp.WindowSize(1280, 1400))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var buf []byte
	shot := func(name string) {
		time.Sleep(700 * time.Millisecond)
		var err error
		if buf, err = chromedp.Run(ctx, chromedp.FullScreenshot(100)); err != nil {
			t.Fatal(err)
		}
		os.WriteFile("/tmp/me/"+name+".png", buf, 0o644)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/admin")); err != nil {
		t.Fatal(err)
	}
	shot("login")
	if err := chromedp.Do(ctx, chromedp.SendKeys("#admin-token", string(tok[:len(tok)-1])), chromedp.Submit("#admin-token"), chromedp.WaitVisible("#admin-stats")); err != nil {
		t.Fatal(err)
	}
	shot("dash")
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/admin/reset")); err != nil {
		t.Fatal(err)
	}
	shot("reset")
	if err := chromedp.Do(ctx, chromedp.Click("button.admin-btn--danger"), chromedp.WaitVisible("#admin-stats")); err != nil {
		t.Fatal(err)
	}
	shot("afterreset")
}
