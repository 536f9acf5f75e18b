$wnd.jsme.runAsyncCallback3('x(728,619,sn);_.be=function(){this.a.n&&u2(this.a.n);this.a.n=new z2(0,this.a)};T(SZ)(3);\n//@ sourceURL=3.js\n')
