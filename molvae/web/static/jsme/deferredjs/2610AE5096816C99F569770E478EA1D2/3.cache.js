$wnd.jsme.runAsyncCallback3('x(699,590,bn);_.Zd=function(){this.a.n&&F0(this.a.n);this.a.n=new K0(0,this.a)};U(YX)(3);\n//@ sourceURL=3.js\n')
